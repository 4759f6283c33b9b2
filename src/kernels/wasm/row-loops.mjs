// Loop shapes for the row-wise kernels of the WebAssembly generators (nn.wat.mjs): i32 address helpers, a
// while loop, one elementwise expression written once for four lanes and for one (`vec`, `one`), a run over
// columns, and row sums in an order fixed by the row's length. Not a generator itself (scripts/build-wasm.mjs
// runs *.wat.mjs only).

import { get, set } from './map.wat.mjs';

export const i32 = (n) => `(i32.const ${n})`;
export const iadd = (a, b) => `(i32.add ${a} ${b})`;
export const imul = (a, b) => `(i32.mul ${a} ${b})`;
/** The byte address of element `index` of the buffer at local `base`. */
export const at = (base, index) => iadd(get(base), `(i32.shl ${index} (i32.const 2))`);
export const lt = (a, b) => `(i32.lt_u ${a} ${b})`;
export const inc = (name, by = 1) => set(name, iadd(get(name), i32(by)));
export const decl = (type, names) => names.map((n) => `(local $${n} ${type})`).join(' ');

/** while (cond) { body } */
export function whileLoop(label, cond, body) {
  return `(block $${label}_end (loop $${label}
      (br_if $${label}_end (i32.eqz ${cond}))
      ${body.join('\n      ')}
      (br $${label})))`;
}

// The two lane widths an elementwise expression is written for once: `vec` (f32x4) and `one` (f32). A value
// `name` lives in local $name (f32) and $name_v (v128, the f32 splat when it is a per-row scalar).
export const vec = {
  load: (a) => `(v128.load ${a})`,
  store: (a, x) => `(v128.store ${a} ${x})`,
  op: (o, a, b) => `(f32x4.${o} ${a} ${b})`,
  get: (n) => `(local.get $${n}_v)`,
  set: (n, x) => `(local.set $${n}_v ${x})`,
};
export const one = {
  load: (a) => `(f32.load ${a})`,
  store: (a, x) => `(f32.store ${a} ${x})`,
  op: (o, a, b) => `(f32.${o} ${a} ${b})`,
  get: (n) => `(local.get $${n})`,
  set: (n, x) => `(local.set $${n} ${x})`,
};
/** Locals for values used at both widths. */
export const both = (names) => `${decl('f32', names)} ${decl('v128', names.map((n) => `${n}_v`))}`;
/** $name_v = splat($name). */
export const splat = (n) => `(local.set $${n}_v (f32x4.splat (local.get $${n})))`;

/**
 * For j over [from, to): `body(L, j)` four columns at a time (L = vec), then the rest one by one (L = one).
 * Uses local $j (i32).
 */
export function columns(label, from, to, body) {
  return [
    set('j', from),
    whileLoop(`${label}_v`, `(i32.le_u ${iadd(get('j'), i32(4))} ${to})`, [...body(vec, get('j')), inc('j', 4)]),
    whileLoop(`${label}_1`, lt(get('j'), to), [...body(one, get('j')), inc('j')]),
  ].join('\n    ');
}

/**
 * Sums over j < n into the f32 locals `names`, in an order fixed by n: element j goes to partial sum j mod 8
 * (two f32x4, $<name>_a and $<name>_b) over the whole blocks of 8, one more whole vector into _a, then
 * ((a + b) lanes combined as (l0 + l1) + (l2 + l3)), then the last n mod 4 elements in order. So any term
 * goes through at most ⌊n/8⌋ + 7 roundings (test/nn-reference.ts sumDepth). `terms(L, j)` gives
 * { prep: statements, terms: one expression per name } for the elements at j. Uses local $j.
 */
export function rowSums(label, n, names, terms) {
  const addTo = (k, t) => names.map((nm, i) => set(`${nm}_${k}`, `(f32x4.add ${get(`${nm}_${k}`)} ${t.terms[i]})`));
  const t0 = terms(vec, get('j'));
  const t1 = terms(vec, iadd(get('j'), i32(4)));
  const lanes = (v) => `(f32.add (f32.add (f32x4.extract_lane 0 ${v}) (f32x4.extract_lane 1 ${v})) (f32.add (f32x4.extract_lane 2 ${v}) (f32x4.extract_lane 3 ${v})))`;
  const tail = terms(one, get('j'));
  return [
    ...names.flatMap((nm) => [set(`${nm}_a`, '(v128.const i32x4 0 0 0 0)'), set(`${nm}_b`, '(v128.const i32x4 0 0 0 0)')]),
    set('j', i32(0)),
    whileLoop(`${label}_8`, `(i32.le_u ${iadd(get('j'), i32(8))} ${n})`, [...t0.prep, ...addTo('a', t0), ...t1.prep, ...addTo('b', t1), inc('j', 8)]),
    `(if (i32.le_u ${iadd(get('j'), i32(4))} ${n}) (then ${[...t0.prep, ...addTo('a', t0), inc('j', 4)].join(' ')}))`,
    ...names.map((nm) => set(nm, lanes(`(f32x4.add ${get(`${nm}_a`)} ${get(`${nm}_b`)})`))),
    whileLoop(`${label}_1`, lt(get('j'), n), [...tail.prep, ...names.map((nm, i) => set(nm, `(f32.add ${get(nm)} ${tail.terms[i]})`)), inc('j')]),
  ].join('\n    ');
}
export const sumLocals = (names) => `${decl('f32', names)} ${decl('v128', names.flatMap((n) => [`${n}_a`, `${n}_b`]))}`;
