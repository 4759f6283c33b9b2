// Generator of the WebAssembly text for the engine's row-wise and elementwise layer kernels (src/nn/: GELU,
// tanh's backward, residual adds, LayerNorm, sums over rows, embedding scatters, softmax cross-entropy), run
// at build time by scripts/build-wasm.mjs. Addresses are byte offsets, counts are elements; every kernel takes
// the rows, columns or elements it is to do, so that a member of a team calls it for its share.
//
// Determinism: an output element is computed by one call, and every sum is taken in an order that depends on
// the shapes alone (row-loops.mjs rowSums() over a row's length; sums over rows in row order), never on the
// range a call got, so a team of any size produces the same bits. The four-lane and the one-lane loops of
// row-loops.mjs columns() run the same float32 operations lane for lane, so an element's bits do not depend
// on which of them reached it.
// Only float32 mul/add/sub/div/sqrt and the exp core of map.wat.mjs (no fused operations): the same bits on
// every machine. Constants sit in mutable globals read into locals (map.wat.mjs constants(): V8 rebuilds a
// v128.const at every use).

import { add, clamp, constants, expConstants, expCore, expLocals, f4, get, mapFunction, mul, set, sub } from './map.wat.mjs';
import { at, both, columns, decl, i32, iadd, imul, inc, lt, rowSums, splat, sumLocals, whileLoop } from './row-loops.mjs';

// ---------------------------------------------------------------------------------------------------------
// Elementwise: map.wat.mjs's loop (whole vectors, then one padded vector), out = f(inputs…).

// GELU, tanh form (GPT-2; torch GELU(approximate='tanh')): ½x(1 + tanh(z)), z = √(2/π)(x + 0.044715x³), is
// x·σ(w) with w = 2z = x·(c1 + c2·x²): one exp and one division, x/(1 + e^−w). Error (u = 2⁻²⁴): w carries
// ≤ 5u (two constants, three roundings), which exp(−w) turns into ≤ 5u·|w|, plus exp's 2 ulps (4u); 1 + e
// scales e's error by e/(1 + e) = 1 − σ(w) and rounds; the division rounds: relative error
// ≤ 2u + (1 − σ(w))·(4 + 5|w|)·u, i.e. ≤ 4 ulps for x ≥ 0 and growing with |w| where σ(w) is small (an argument
// error that any float32 w has). −w is clamped to exp's [−104, 88.75]: from x < −10, e = +∞ and the result
// is −0 (the true value is below 10⁻³⁸).
const kC1 = 2 * Math.sqrt(2 / Math.PI);
const kC2 = kC1 * 0.044715;
const geluForward = {
  locals: `(local $s v128) (local $y v128) ${expLocals}`,
  // −c1 and −c2: −w directly (f32x4.neg costs V8 a sign-mask constant rebuilt at every use); the same bits
  consts: [...expConstants, ['nc1', f4(-kC1)], ['nc2', f4(-kC2)], ['lo', f4('-104')], ['hi', f4('88.75')], ['one', f4('1')]],
  body: [
    set('s', mul(get('v'), get('v'))),
    set('y', clamp(mul(get('v'), add(get('nc1'), mul(get('nc2'), get('s')))), get('lo'), get('hi'))),
    ...expCore('y'),
  ],
  result: `(f32x4.div ${get('v')} ${add(get('one'), get('e'))})`,
};

// d/dx x·σ(w) = σ + x·w′·σ·(1 − σ), w′ = c1 + 3c2·x²; 1 − σ is taken as e·σ (no cancellation where σ → 1).
// dinp = dout·σ·(1 + x·w′·(1 − σ)); the bracket cancels near x ≈ −0.75 (GELU's minimum), so the error is
// bounded against σ·(1 + |x·w′·(1 − σ)|): ≤ (8 + 10|w|)·u of it (σ and e·σ each carry ≤ (4 + 5|w|)·u as
// above) plus u of the result. −w is clamped at 88 (e stays finite, σ ≥ 2⁻¹²⁷): below x ≈ −10 the derivative
// (< 10⁻³⁵ there) comes out within dout·2⁻¹²⁶·(1 + |x·w′|) of its value. x itself is clamped to [−20, 20] first
// (GELU′ is 1 above, below 10⁻²⁶⁰ under), so that x²·x cannot overflow into ∞·0.
const geluBackward = {
  inputs: [['x', 'v'], ['d', 'dv']],
  locals: `(local $s v128) (local $w v128) (local $y v128) (local $sg v128) ${expLocals}`,
  consts: [...expConstants, ['c1', f4(kC1)], ['nc1', f4(-kC1)], ['nc2', f4(-kC2)], ['c3', f4(3 * kC2)], ['lo', f4('-104')], ['hi', f4('88')], ['one', f4('1')], ['xlo', f4('-20')], ['xhi', f4('20')]],
  body: [
    set('v', clamp(get('v'), get('xlo'), get('xhi'))),
    set('s', mul(get('v'), get('v'))),
    set('y', clamp(mul(get('v'), add(get('nc1'), mul(get('nc2'), get('s')))), get('lo'), get('hi'))),
    ...expCore('y'),
    set('sg', `(f32x4.div ${get('one')} ${add(get('one'), get('e'))})`),
    // w′ = c1 + c3·x² into $w, (1 − σ) = e·σ into $e
    set('w', add(get('c1'), mul(get('c3'), get('s')))),
    set('e', mul(get('e'), get('sg'))),
  ],
  result: mul(get('dv'), mul(get('sg'), add(get('one'), mul(mul(get('v'), get('w')), get('e'))))),
};

// tanh′ from the saved output y: dinp = dout·(1 − y)(1 + y), within 3 roundings (1 − y is exact for y ≥ ½).
const tanhBackward = {
  inputs: [['y', 'v'], ['d', 'dv']],
  locals: '',
  consts: [['one', f4('1')]],
  body: [],
  result: mul(get('dv'), mul(sub(get('one'), get('v')), add(get('one'), get('v')))),
};

const addVectors = { inputs: [['a', 'v'], ['b', 'w']], locals: '', consts: [], body: [], result: add(get('v'), get('w')) };

// ---------------------------------------------------------------------------------------------------------
// LayerNorm (torch's: biased variance), a row per step. Forward: μ = Σx/C, σ² = Σ(x − μ)²/C (two passes:
// no cancellation), rstd = 1/√(σ² + ε), out = ((x − μ)·rstd)·γ + β.
function layerNormForward() {
  const x = (L, j) => L.load(at('x', j));
  return `
  (func (export "layerNormForward") (param $out i32) (param $mean i32) (param $rstd i32) (param $inp i32) (param $gamma i32) (param $beta i32)
    (param $r0 i32) (param $r1 i32) (param $C i32) (param $eps f32)
    ${decl('i32', ['r', 'j', 'x', 'o'])} (local $n f32) ${both(['mu', 'rs', 'd'])} ${sumLocals(['sum', 'ss'])}
    (local.set $n (f32.convert_i32_u (local.get $C)))
    (local.set $r (local.get $r0))
    ${whileLoop('rows', lt(get('r'), get('r1')), [
      set('x', at('inp', imul(get('r'), get('C')))),
      set('o', at('out', imul(get('r'), get('C')))),
      rowSums('mean', get('C'), ['sum'], (L, j) => ({ prep: [], terms: [x(L, j)] })),
      set('mu', `(f32.div ${get('sum')} ${get('n')})`),
      splat('mu'),
      rowSums('var', get('C'), ['ss'], (L, j) => ({ prep: [L.set('d', L.op('sub', x(L, j), L.get('mu')))], terms: [L.op('mul', L.get('d'), L.get('d'))] })),
      set('rs', `(f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div ${get('ss')} ${get('n')}) ${get('eps')})))`),
      splat('rs'),
      `(f32.store ${at('mean', get('r'))} ${get('mu')})`,
      `(f32.store ${at('rstd', get('r'))} ${get('rs')})`,
      columns('out', i32(0), get('C'), (L, j) => [
        L.store(at('o', j), L.op('add', L.op('mul', L.op('mul', L.op('sub', x(L, j), L.get('mu')), L.get('rs')), L.load(at('gamma', j))), L.load(at('beta', j)))),
      ]),
      inc('r'),
    ])})`;
}

// Backward, rows [r0, r1) of dinp (llm.c layernorm_backward): n̂ = (x − μ)·rstd, g = dout·γ,
// dinp (+)= ((g − Σg/C) − n̂·(Σg·n̂/C))·rstd.
function layerNormBackward() {
  const prep = (L, j) => [
    L.set('nh', L.op('mul', L.op('sub', L.load(at('x', j)), L.get('mu')), L.get('rs'))),
    L.set('g', L.op('mul', L.load(at('dy', j)), L.load(at('gamma', j)))),
  ];
  const value = (L, j) => L.op('mul', L.op('sub', L.op('sub', L.get('g'), L.get('a')), L.op('mul', L.get('nh'), L.get('b'))), L.get('rs'));
  return `
  (func (export "layerNormBackward") (param $dinp i32) (param $dout i32) (param $inp i32) (param $gamma i32) (param $mean i32) (param $rstd i32)
    (param $r0 i32) (param $r1 i32) (param $C i32) (param $accumulate i32)
    ${decl('i32', ['r', 'j', 'x', 'dy', 'dx'])} (local $n f32) ${both(['mu', 'rs', 'a', 'b', 'nh', 'g'])} ${sumLocals(['sg', 'sgn'])}
    (local.set $n (f32.convert_i32_u (local.get $C)))
    (local.set $r (local.get $r0))
    ${whileLoop('rows', lt(get('r'), get('r1')), [
      set('x', at('inp', imul(get('r'), get('C')))),
      set('dy', at('dout', imul(get('r'), get('C')))),
      set('dx', at('dinp', imul(get('r'), get('C')))),
      set('mu', `(f32.load ${at('mean', get('r'))})`),
      set('rs', `(f32.load ${at('rstd', get('r'))})`),
      splat('mu'),
      splat('rs'),
      rowSums('sums', get('C'), ['sg', 'sgn'], (L, j) => ({ prep: prep(L, j), terms: [L.get('g'), L.op('mul', L.get('g'), L.get('nh'))] })),
      set('a', `(f32.div ${get('sg')} ${get('n')})`),
      set('b', `(f32.div ${get('sgn')} ${get('n')})`),
      splat('a'),
      splat('b'),
      `(if ${get('accumulate')}
      (then ${columns('acc', i32(0), get('C'), (L, j) => [...prep(L, j), L.store(at('dx', j), L.op('add', L.load(at('dx', j)), value(L, j)))])})
      (else ${columns('set', i32(0), get('C'), (L, j) => [...prep(L, j), L.store(at('dx', j), value(L, j))])}))`,
      inc('r'),
    ])})`;
}

// dγ[j] = Σ_r dout·n̂ and dβ[j] = Σ_r dout for columns j in [c0, c1), over all rows in row order (n̂ recomputed as
// the backward does). Written, not added to.
function layerNormParamGrads() {
  return `
  (func (export "layerNormParamGrads") (param $dgamma i32) (param $dbeta i32) (param $dout i32) (param $inp i32) (param $mean i32) (param $rstd i32)
    (param $rows i32) (param $C i32) (param $c0 i32) (param $c1 i32)
    ${decl('i32', ['r', 'j', 'x', 'dy'])} ${both(['mu', 'rs', 'd'])}
    (memory.fill ${at('dgamma', get('c0'))} (i32.const 0) (i32.shl (i32.sub ${get('c1')} ${get('c0')}) (i32.const 2)))
    (memory.fill ${at('dbeta', get('c0'))} (i32.const 0) (i32.shl (i32.sub ${get('c1')} ${get('c0')}) (i32.const 2)))
    ${whileLoop('rows', lt(get('r'), get('rows')), [
      set('x', at('inp', imul(get('r'), get('C')))),
      set('dy', at('dout', imul(get('r'), get('C')))),
      set('mu', `(f32.load ${at('mean', get('r'))})`),
      set('rs', `(f32.load ${at('rstd', get('r'))})`),
      splat('mu'),
      splat('rs'),
      columns('cols', get('c0'), get('c1'), (L, j) => [
        L.set('d', L.load(at('dy', j))),
        L.store(at('dgamma', j), L.op('add', L.load(at('dgamma', j)), L.op('mul', L.get('d'), L.op('mul', L.op('sub', L.load(at('x', j)), L.get('mu')), L.get('rs'))))),
        L.store(at('dbeta', j), L.op('add', L.load(at('dbeta', j)), L.get('d'))),
      ]),
      inc('r'),
    ])})`;
}

// out[j] (+)= Σ_r x[r·ld + j] for columns j in [c0, c1), rows in order (a linear layer's bias gradient; the
// position embedding's, with the batch as the rows).
function columnSums() {
  return `
  (func (export "columnSums") (param $out i32) (param $x i32) (param $rows i32) (param $ld i32) (param $c0 i32) (param $c1 i32) (param $accumulate i32)
    ${decl('i32', ['r', 'j', 'p'])}
    (if (i32.eqz ${get('accumulate')}) (then
      (memory.fill ${at('out', get('c0'))} (i32.const 0) (i32.shl (i32.sub ${get('c1')} ${get('c0')}) (i32.const 2)))))
    ${whileLoop('rows', lt(get('r'), get('rows')), [
      set('p', at('x', imul(get('r'), get('ld')))),
      columns('cols', get('c0'), get('c1'), (L, j) => [L.store(at('out', j), L.op('add', L.load(at('out', j)), L.load(at('p', j))))]),
      inc('r'),
    ])})`;
}

// ---------------------------------------------------------------------------------------------------------
// Token ids. Every kernel that indexes by an id checks all the ids it will use first and, on one outside
// [0, limit), writes nothing and returns its position; −1 when all were good.
const firstBad = `
  (func $firstBad (param $ids i32) (param $count i32) (param $limit i32) (result i32)
    (local $i i32)
    ${whileLoop('ids', lt(get('i'), get('count')), [
      `(if (i32.ge_u (i32.load ${at('ids', get('i'))}) ${get('limit')}) (then (return ${get('i')})))`,
      inc('i'),
    ])}
    (i32.const -1))`;
/** Return r0 + the index of the first bad id of ids[r0, r1), if there is one (uses local $bad). */
const refuseBadIds = (ids, r0, r1, limit) => `(local.set $bad (call $firstBad ${at(ids, r0)} (i32.sub ${r1} ${r0}) ${limit}))
    (if (i32.ge_s ${get('bad')} (i32.const 0)) (then (return ${iadd(r0, get('bad'))})))`;

// GPT input: out[r, :] = wte[tokens[r], :] + wpe[r mod T, :] for rows r in [r0, r1).
function encoderForward() {
  return `
  (func (export "encoderForward") (param $out i32) (param $tokens i32) (param $wte i32) (param $wpe i32)
    (param $r0 i32) (param $r1 i32) (param $T i32) (param $C i32) (param $V i32) (result i32)
    ${decl('i32', ['r', 'j', 'bad', 'o', 'e', 'p'])}
    ${refuseBadIds('tokens', get('r0'), get('r1'), get('V'))}
    (local.set $r (local.get $r0))
    ${whileLoop('rows', lt(get('r'), get('r1')), [
      set('o', at('out', imul(get('r'), get('C')))),
      set('e', at('wte', imul(`(i32.load ${at('tokens', get('r'))})`, get('C')))),
      set('p', at('wpe', imul(`(i32.rem_u ${get('r')} ${get('T')})`, get('C')))),
      columns('cols', i32(0), get('C'), (L, j) => [L.store(at('o', j), L.op('add', L.load(at('e', j)), L.load(at('p', j))))]),
      inc('r'),
    ])}
    (i32.const -1))`;
}

// The backward of a gather: dtable[ids[r], j] += dout[r, j] for columns j in [c0, c1) of rows C wide, r in
// order (a row that several positions share gets their gradients in position order); with `zero`, columns
// [c0, c1) of all V rows are zeroed first.
function scatterColumns() {
  return `
  (func (export "scatterColumns") (param $dtable i32) (param $dout i32) (param $ids i32) (param $count i32)
    (param $C i32) (param $c0 i32) (param $c1 i32) (param $V i32) (param $zero i32) (result i32)
    ${decl('i32', ['r', 'j', 'bad', 'dst', 'src'])}
    ${refuseBadIds('ids', i32(0), get('count'), get('V'))}
    (if ${get('zero')} (then
      ${whileLoop('zero', lt(get('r'), get('V')), [
        `(memory.fill ${at('dtable', iadd(imul(get('r'), get('C')), get('c0')))} (i32.const 0) (i32.shl (i32.sub ${get('c1')} ${get('c0')}) (i32.const 2)))`,
        inc('r'),
      ])}))
    (local.set $r (i32.const 0))
    ${whileLoop('rows', lt(get('r'), get('count')), [
      set('dst', at('dtable', imul(`(i32.load ${at('ids', get('r'))})`, get('C')))),
      set('src', at('dout', imul(get('r'), get('C')))),
      columns('cols', get('c0'), get('c1'), (L, j) => [L.store(at('dst', j), L.op('add', L.load(at('dst', j)), L.load(at('src', j))))]),
      inc('r'),
    ])}
    (i32.const -1))`;
}

// ---------------------------------------------------------------------------------------------------------
// Softmax cross-entropy, rows [r0, r1) of logits [rows, V]: m = max, s = Σ exp(x − m) (rowSums' order, the last
// n mod 4 through one masked vector), loss = log s + m − x[target] in float64 (log below). With `backward`,
// the row is overwritten by exp(x − m) while summing, then by its products with scale/s, and scale is taken
// off the target's: dlogits = (softmax − onehot)·scale, the row read three times and written twice.

// ln x for float64 x ≥ 1 (NaN and +∞ returned as they are): x = m·2^k with m in [√½, √2),
// ln m = 2·atanh(t) = 2t·Σ t^(2i)/(2i + 1), t = (m − 1)/(m + 1), |t| ≤ 0.172: through i = 8 the series is
// exact to 2·10⁻¹⁴ relative, far below the float32 loss it feeds.
const log64 = `
  (func $log (param $x f64) (result f64)
    (local $bits i64) (local $k f64) (local $m f64) (local $t f64) (local $s f64) (local $p f64)
    (if (i32.eqz (f64.lt (local.get $x) (f64.const inf))) (then (return (local.get $x))))
    (local.set $bits (i64.reinterpret_f64 (local.get $x)))
    (local.set $k (f64.convert_i64_s (i64.sub (i64.shr_u (local.get $bits) (i64.const 52)) (i64.const 1023))))
    (local.set $m (f64.reinterpret_i64 (i64.or (i64.and (local.get $bits) (i64.const 0x000fffffffffffff)) (i64.const 0x3ff0000000000000))))
    (if (f64.gt (local.get $m) (f64.const 1.4142135623730951)) (then
      (local.set $m (f64.mul (local.get $m) (f64.const 0.5)))
      (local.set $k (f64.add (local.get $k) (f64.const 1)))))
    (local.set $t (f64.div (f64.sub (local.get $m) (f64.const 1)) (f64.add (local.get $m) (f64.const 1))))
    (local.set $s (f64.mul (local.get $t) (local.get $t)))
    (local.set $p (f64.const ${1 / 17}))
    ${[15, 13, 11, 9, 7, 5, 3, 1].map((d) => `(local.set $p (f64.add (f64.mul (local.get $p) (local.get $s)) (f64.const ${1 / d})))`).join('\n    ')}
    (f64.add (f64.mul (local.get $k) (f64.const ${Math.LN2})) (f64.mul (f64.mul (f64.const 2) (local.get $t)) (local.get $p))))`;

function crossEntropy() {
  const c = constants('crossEntropy', [...expConstants, ['lo', f4('-104')], ['hi', f4('88.75')]]);
  // e = exp(x − m) of the vector at byte address `a` (already in $y), added to `acc`, stored back when backward
  const expAt = (a, acc) => [
    set('y', clamp(sub(get('y'), get('m_v')), get('lo'), get('hi'))),
    ...expCore('y'),
    set(acc, add(get(acc), get('e'))),
    `(if ${get('backward')} (then (v128.store ${a} ${get('e')})))`,
  ];
  const lane = (i, then) => `(if (i32.gt_u ${get('rem')} (i32.const ${i})) (then ${then}))`;
  return `
  ${c.globals}
  (func (export "crossEntropy") (param $losses i32) (param $logits i32) (param $targets i32) (param $r0 i32) (param $r1 i32)
    (param $V i32) (param $scale f32) (param $backward i32) (result i32)
    ${decl('i32', ['row', 'j', 'bad', 'x', 'tg', 'rem'])} (local $m f32) (local $m_v v128) (local $xt f32) (local $s f32) (local $q f32) (local $q_v v128)
    (local $acc_a v128) (local $acc_b v128) (local $y v128) ${expLocals} ${c.decl}
    ${c.init}
    ${refuseBadIds('targets', get('r0'), get('r1'), get('V'))}
    (local.set $row (local.get $r0))
    ${whileLoop('rows', lt(get('row'), get('r1')), [
      set('x', at('logits', imul(get('row'), get('V')))),
      set('tg', `(i32.load ${at('targets', get('row'))})`),
      set('xt', `(f32.load ${at('x', get('tg'))})`),
      // the max (exact in any order; pmax skips a NaN, which the sum then carries into the loss)
      set('m_v', '(v128.const f32x4 -inf -inf -inf -inf)'),
      set('j', i32(0)),
      whileLoop('max_v', `(i32.le_u ${iadd(get('j'), i32(4))} ${get('V')})`, [set('m_v', `(f32x4.pmax ${get('m_v')} (v128.load ${at('x', get('j'))}))`), inc('j', 4)]),
      set('m', `(f32.max (f32.max (f32x4.extract_lane 0 ${get('m_v')}) (f32x4.extract_lane 1 ${get('m_v')})) (f32.max (f32x4.extract_lane 2 ${get('m_v')}) (f32x4.extract_lane 3 ${get('m_v')})))`),
      whileLoop('max_1', lt(get('j'), get('V')), [set('m', `(f32.max ${get('m')} (f32.load ${at('x', get('j'))}))`), inc('j')]),
      splat('m'),
      // Σ exp(x − m)
      set('acc_a', '(v128.const i32x4 0 0 0 0)'),
      set('acc_b', '(v128.const i32x4 0 0 0 0)'),
      set('j', i32(0)),
      whileLoop('sum_8', `(i32.le_u ${iadd(get('j'), i32(8))} ${get('V')})`, [
        set('y', `(v128.load ${at('x', get('j'))})`),
        ...expAt(at('x', get('j')), 'acc_a'),
        set('y', `(v128.load offset=16 ${at('x', get('j'))})`),
        ...expAt(at('x', iadd(get('j'), i32(4))), 'acc_b'),
        inc('j', 8),
      ]),
      `(if (i32.le_u ${iadd(get('j'), i32(4))} ${get('V')}) (then
        ${[set('y', `(v128.load ${at('x', get('j'))})`), ...expAt(at('x', get('j')), 'acc_a'), inc('j', 4)].join('\n        ')}))`,
      set('rem', `(i32.sub ${get('V')} ${get('j')})`),
      `(if ${get('rem')} (then
        ${[
          set('y', `(f32x4.replace_lane 0 ${get('m_v')} (f32.load ${at('x', get('j'))}))`),
          lane(1, set('y', `(f32x4.replace_lane 1 ${get('y')} (f32.load offset=4 ${at('x', get('j'))}))`)),
          lane(2, set('y', `(f32x4.replace_lane 2 ${get('y')} (f32.load offset=8 ${at('x', get('j'))}))`)),
          set('y', clamp(sub(get('y'), get('m_v')), get('lo'), get('hi'))),
          ...expCore('y'),
          // lanes past the row (padded with m: e = 1) count as 0
          set('e', `(v128.and ${get('e')} (i32x4.lt_s (v128.const i32x4 0 1 2 3) (i32x4.splat ${get('rem')})))`),
          set('acc_b', add(get('acc_b'), get('e'))),
          `(if ${get('backward')} (then
            (f32.store ${at('x', get('j'))} (f32x4.extract_lane 0 ${get('e')}))
            ${lane(1, `(f32.store offset=4 ${at('x', get('j'))} (f32x4.extract_lane 1 ${get('e')}))`)}
            ${lane(2, `(f32.store offset=8 ${at('x', get('j'))} (f32x4.extract_lane 2 ${get('e')}))`)}))`,
        ].join('\n        ')}))`,
      set('acc_a', add(get('acc_a'), get('acc_b'))),
      set('s', `(f32.add (f32.add (f32x4.extract_lane 0 ${get('acc_a')}) (f32x4.extract_lane 1 ${get('acc_a')})) (f32.add (f32x4.extract_lane 2 ${get('acc_a')}) (f32x4.extract_lane 3 ${get('acc_a')})))`),
      `(f32.store ${at('losses', get('row'))} (f32.demote_f64 (f64.add (call $log (f64.promote_f32 ${get('s')})) (f64.sub (f64.promote_f32 ${get('m')}) (f64.promote_f32 ${get('xt')})))))`,
      `(if ${get('backward')} (then
        ${[
          set('q', `(f32.div ${get('scale')} ${get('s')})`),
          splat('q'),
          columns('grad', i32(0), get('V'), (L, j) => [L.store(at('x', j), L.op('mul', L.load(at('x', j)), L.get('q')))]),
          `(f32.store ${at('x', get('tg'))} (f32.sub (f32.load ${at('x', get('tg'))}) ${get('scale')}))`,
        ].join('\n        ')}))`,
      inc('row'),
    ])}
    (i32.const -1))`;
}

export default function generate() {
  const text = `;; Generated by src/kernels/wasm/nn.wat.mjs: the engine's layer kernels (src/kernels/nn-ops.ts).
(module
  (import "env" "memory" (memory 0))
${mapFunction('gelu', geluForward)}
${mapFunction('geluBackward', geluBackward)}
${mapFunction('tanhBackward', tanhBackward)}
${mapFunction('add', addVectors)}
${layerNormForward()}
${layerNormBackward()}
${layerNormParamGrads()}
${columnSums()}
${firstBad}
${encoderForward()}
${scatterColumns()}
${log64}
${crossEntropy()}
)
`;
  return [{ name: 'nn', text, features: { simd: true, bulk_memory: true } }];
}
