// Generator of the WebAssembly text for our elementwise transcendental kernels, tanh and exp, four float32
// lanes at a time, run at build time by scripts/build-wasm.mjs. Its pieces (the four-lane exp core, tanh's body,
// the map loop) are exported for the other generators: one copy of each. A generator because both share one exp core
// and one loop shape (whole vectors, then a padded vector for the tail, one copy of the body). Only float32
// mul/add/sub/div, no fused operations: the same bits on every machine and thread. Written for V8's code: the
// constants live in mutable globals (see constants()), clamps use pmin/pmax, rounding is the 1.5·2²³ addition;
// exp runs at ~0.9 Gelem/s on one thread here (0.4 with v128.const, min/max, nearest and trunc_sat: the same
// bits), tanh at ~0.4 (its two branches hold more constants than there are registers).

export const f4 = (v) => `(v128.const f32x4 ${v} ${v} ${v} ${v})`;
export const i4 = (v) => `(v128.const i32x4 ${v} ${v} ${v} ${v})`;
export const get = (name) => `(local.get $${name})`;
export const set = (name, value) => `(local.set $${name} ${value})`;
export const mul = (a, b) => `(f32x4.mul ${a} ${b})`;
export const add = (a, b) => `(f32x4.add ${a} ${b})`;
export const sub = (a, b) => `(f32x4.sub ${a} ${b})`;
/**
 * min(max(x, lo), hi) with NaN kept: pmax(x, lo) is x < lo ? lo : x and pmin(y, hi) is hi < y ? hi : y, so a NaN
 * x comes through both. One instruction each, where V8 expands f32x4.min/max (IEEE NaN and ±0 rules) to eight.
 */
export const clamp = (x, lo, hi) => `(f32x4.pmin (f32x4.pmax ${x} ${lo}) ${hi})`;

// exp(r) for |r| ≤ ln2/2: its Taylor polynomial of degree 7 (truncation < 4e-9, 0.06 ulp), highest first.
const kExpPoly = ['0x1.a01a02p-13', '0x1.6c16c2p-10', '0x1.111112p-7', '0x1.555556p-5', '0x1.555556p-3', '0.5', '1', '1'];
// (tanh(x) − x)/x³ as a series in s = x²: tanh's Taylor coefficients of x³ … x¹⁷ (−1/3, 2/15, −17/315, …), highest
// first; through x¹⁷ the truncation at |x| = 0.55 is 5e-9 relative (0.08 ulp).
const kTanhPoly = ['0x1.355824p-11', '-0x1.7da364p-10', '0x1.d6d3d0p-9', '-0x1.226e36p-7', '0x1.664f48p-6', '-0x1.ba1ba2p-5', '0x1.111112p-3', '-0x1.555556p-2'];
const kLog2e = '0x1.715476p+0';
// ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with 14 significant bits so that n·kLn2Hi is exact for |n| < 2¹⁰ (Cody–Waite)
const kLn2Hi = '0x1.62e4p-1';
const kLn2Lo = '0x1.7f7d1cp-20';

/**
 * Constants of function `scope` as locals: name → literal. V8 rematerializes a v128.const at every use, even
 * through a local (three instructions, two of them on the shuffle port), so each literal sits in a mutable
 * global, which V8 cannot fold, and is read into its local once per call: it then stays in a register (or a
 * stack slot). `globals` are module fields: emit them beside the function.
 */
export function constants(scope, entries) {
  // a literal that repeats (exp's last two coefficients are 1, and so is many a caller's `one`) is one value:
  // its later locals copy the first, so V8 keeps one register for them
  const first = new Map();
  for (const [name, value] of entries) if (!first.has(value)) first.set(value, name);
  const owners = entries.filter(([name, value]) => first.get(value) === name);
  return {
    globals: owners.map(([name, value]) => `(global $${scope}_${name} (mut v128) ${value})`).join('\n  '),
    decl: entries.map(([name]) => `(local $${name} v128)`).join(' '),
    init: entries.map(([name, value]) => set(name, first.get(value) === name ? `(global.get $${scope}_${name})` : get(first.get(value)))).join('\n    '),
  };
}

export const polyConstants = (prefix, coefficients) => coefficients.map((c, i) => [`${prefix}${i}`, f4(c)]);

/** Horner: p = c0; p = p·x + c_i … into local `out`. */
export function horner(out, prefix, count, x) {
  const lines = [set(out, get(`${prefix}0`))];
  for (let i = 1; i < count; i++) lines.push(set(out, add(mul(get(out), get(x)), get(`${prefix}${i}`))));
  return lines;
}

/**
 * e = exp(y) in local `e`, y already within [−104, 88.75]: n = nearest(y·log₂e), r = y − n·ln 2 (two steps),
 * e = p(r)·2^⌊n/2⌋·2^(n − ⌊n/2⌋). Two power-of-two factors keep each one normal from 2⁻⁷⁵ to 2⁶⁴, so results
 * below 2⁻¹²⁶ round once into the subnormals (or to 0) and results above the float32 range become +∞.
 */
export function expCore(y) {
  const pow2 = (k) => `(i32x4.shl (i32x4.add ${k} ${get('bias127')}) (i32.const 23))`;
  return [
    // n = y·log₂e rounded to the nearest (even) integer by adding 1.5·2²³ (|y·log₂e| < 2²², so the sum's ulp is
    // 1): the bits of f32x4.nearest, and the integer k = n is the sum's bits less the constant's (cheaper than
    // nearest + trunc_sat, which V8 expands to six instructions)
    set('t', add(mul(get(y), get('log2e')), get('round'))),
    set('n', sub(get('t'), get('round'))),
    set('r', sub(sub(get(y), mul(get('n'), get('ln2hi'))), mul(get('n'), get('ln2lo')))),
    ...horner('e', 'ep', kExpPoly.length, 'r'),
    set('k', `(i32x4.sub ${get('t')} ${get('round')})`),
    set('k1', `(i32x4.shr_s ${get('k')} (i32.const 1))`),
    set('e', mul(mul(get('e'), pow2(get('k1'))), pow2(`(i32x4.sub ${get('k')} ${get('k1')})`))),
  ];
}

export const expLocals = '(local $t v128) (local $n v128) (local $r v128) (local $e v128) (local $k v128) (local $k1 v128)';
export const expConstants = [['log2e', f4(kLog2e)], ['round', f4('0x1.8p23')], ['bias127', i4(127)], ['ln2hi', f4(kLn2Hi)], ['ln2lo', f4(kLn2Lo)], ...polyConstants('ep', kExpPoly)];

/**
 * An exported map out[i] = f(x[i], …), i < count, over one or more inputs (`inputs`: [parameter, local] pairs,
 * the parameters first in the signature, then out and count; out may be any input): whole vectors, then the
 * last count mod 4 through one zero-padded vector per input, with a single copy of the body.
 */
export function mapFunction(name, { inputs = [['x', 'v']], locals, consts, body, result }) {
  const c = constants(name, consts);
  const lane = (i) => `(if (i32.gt_u ${get('rem')} (i32.const ${i})) (then `;
  const whole = inputs.map(([p, v]) => set(v, `(v128.load ${get(p)})`));
  const padded = inputs.flatMap(([p, v]) => [
    set(v, `(f32x4.replace_lane 0 (v128.const i32x4 0 0 0 0) (f32.load ${get(p)}))`),
    `${lane(1)}${set(v, `(f32x4.replace_lane 1 ${get(v)} (f32.load offset=4 ${get(p)}))`)}))`,
    `${lane(2)}${set(v, `(f32x4.replace_lane 2 ${get(v)} (f32.load offset=8 ${get(p)}))`)}))`,
  ]);
  const advance = [...inputs.map(([p]) => p), 'out'].map((p) => set(p, `(i32.add ${get(p)} (i32.const 16))`));
  return `
  ${c.globals}
  (func (export "${name}") ${inputs.map(([p]) => `(param $${p} i32)`).join(' ')} (param $out i32) (param $count i32)
    (local $vend i32) (local $rem i32) (local $res v128) ${inputs.map(([, v]) => `(local $${v} v128)`).join(' ')} ${locals} ${c.decl}
    ${c.init}
    (local.set $vend (i32.add (local.get $out) (i32.shl (i32.and (local.get $count) (i32.const -4)) (i32.const 2))))
    (local.set $rem (i32.and (local.get $count) (i32.const 3)))
    (block $done (loop $each
      (if (i32.lt_u (local.get $out) (local.get $vend))
        (then ${whole.join(' ')})
        (else
          (br_if $done (i32.eqz (local.get $rem)))
          ${padded.join('\n          ')}))
      ${body.join('\n      ')}
      (if (i32.lt_u (local.get $out) (local.get $vend))
        (then
          (v128.store (local.get $out) ${result})
          ${advance.join('\n          ')}
          (br $each)))
      (local.set $res ${result})
      (f32.store (local.get $out) (f32x4.extract_lane 0 (local.get $res)))
      ${lane(1)}(f32.store offset=4 (local.get $out) (f32x4.extract_lane 1 (local.get $res)))))
      ${lane(2)}(f32.store offset=8 (local.get $out) (f32x4.extract_lane 2 (local.get $res))))))))`;
}

// tanh, within 3 ulps:
//   |x| < 0.55:  |x| + |x|·s·P(s), s = x² (the correction is under a tenth of the result, so its rounding barely
//                shows: ≤ 1 ulp);
//   |x| ≥ 0.55:  (1 − e)/(1 + e), e = exp(−2|x|) ≤ 1/3 within 1.5 ulps; e's error reaches the result scaled by
//                2e/(1 − e²) ≤ 0.75, plus three roundings: ≤ 2.6 ulps.
// |x| is clamped at 9.1 (tanh is 1.0f from there), the sign copied back from x (tanh(−0) = −0); NaN stays NaN.
export const tanh = {
  locals: `(local $ax v128) (local $s v128) (local $p v128) (local $y v128) ${expLocals}`,
  consts: [...expConstants, ...polyConstants('tp', kTanhPoly), ['sign', i4('0x80000000')], ['clamp', f4('9.1')], ['split', f4('0.55')], ['one', f4('1')], ['m2', f4('-2')]],
  body: [
    set('ax', `(f32x4.pmin (f32x4.abs ${get('v')}) ${get('clamp')})`),
    set('s', mul(get('ax'), get('ax'))),
    ...horner('p', 'tp', kTanhPoly.length, 's'),
    set('p', add(get('ax'), mul(get('ax'), mul(get('s'), get('p'))))),
    set('y', mul(get('ax'), get('m2'))),
    ...expCore('y'),
    set('e', `(f32x4.div ${sub(get('one'), get('e'))} ${add(get('one'), get('e'))})`),
  ],
  result: `(v128.or (v128.bitselect ${get('p')} ${get('e')} (f32x4.lt ${get('ax')} ${get('split')})) (v128.and ${get('v')} ${get('sign')}))`,
};

// exp, within 2 ulps where the result is normal: the polynomial (≤ 1 ulp with its Horner roundings) and r's
// one rounding (|r| ≤ 0.35, so ≤ 0.35 ulp in exp(r)); the powers of two are exact. x is clamped to
// [−104, 88.75] (beyond: 0 and +∞, as exp gives in float32); NaN stays NaN.
export const exp = {
  locals: `(local $y v128) ${expLocals}`,
  consts: [...expConstants, ['lo', f4('-104')], ['hi', f4('88.75')]],
  body: [set('y', clamp(get('v'), get('lo'), get('hi'))), ...expCore('y')],
  result: get('e'),
};

export default function generate() {
  const text = `;; Generated by src/kernels/wasm/map.wat.mjs: elementwise tanh and exp over float32.
(module
  (import "env" "memory" (memory 0))
${mapFunction('tanh', tanh)}
${mapFunction('exp', exp)}
)
`;
  return [{ name: 'map', text, features: { simd: true } }];
}
