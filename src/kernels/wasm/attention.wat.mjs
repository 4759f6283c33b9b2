// Generator of the WebAssembly text for causal attention's row kernels (module `attention`), run at build time
// by scripts/build-wasm.mjs. The products (q·kᵀ, att·v and the backward's four) are the GEMM's; what is left
// is row-wise and lives here: the masked, scaled softmax of a score row with its log Σ exp, the same
// probabilities again from a saved log Σ exp, and the softmax backward. Four float32 lanes at a time, with
// map.wat.mjs's exp core (imported, not copied), float32 mul/add/sub only (no fused operations), so the bits
// depend on a row's values and length alone: never on where the row lies, which block of rows it came in,
// or which thread ran it.
//
// A row of causal position i has n = i + 1 live entries (j ≤ i) out of `width` stored ones; the entries past
// n are written as zeros (the GEMMs that read the row then add exact zeros). With s the raw scores and
// x = fl(s·scale):
//   m   = max_j x_j                    (= fl(max_j s_j · scale): rounding is monotone and scale > 0)
//   e_j = exp(fl(x_j − m))             (e ≤ 1, the max's own term is exactly 1, so Σ ≥ 1)
//   lse = fl32(m + log Σ_j e_j)        (the log in float64, one rounding to float32)
//   c   = exp(fl(m − lse))             (≈ 1/Σ e: a scalar per row)
//   p_j = fl(e_j · c)
// p is defined through (m, lse) rather than as e/Σe so that the backward can rebuild it bit for bit from
// the saved lse alone: m is a max of the recomputed scores (no exp), c follows from (m, lse), and e_j, p_j
// are the same roundings of the same operands. One exp per live score in either pass.

import { constants, expConstants, expCore, expLocals, f4, get, set, mul, add, sub } from './map.wat.mjs';

// Lower clamp of exp's argument (map.wat.mjs's exp clamps there too): below it exp is 0 in float32.
const kExpLo = '-104';

const laneIndex = '(v128.const i32x4 0 1 2 3)';

/** v = base with lanes [0, t) loaded from ptr (t = 1, 2 or 3 in local $tail): reads nothing past the row. */
function loadTail(v, ptr, base) {
  const lane = (i) => `(if (i32.gt_u ${get('tail')} (i32.const ${i})) (then ${set(v, `(f32x4.replace_lane ${i} ${get(v)} (f32.load offset=${4 * i} ${get(ptr)}))`)}))`;
  return [set(v, `(f32x4.replace_lane 0 ${base} (f32.load ${get(ptr)}))`), lane(1), lane(2)].join('\n      ');
}

/** Store lanes [0, t) of v at ptr: writes nothing past the row. */
function storeTail(ptr, v) {
  const lane = (i) => `(if (i32.gt_u ${get('tail')} (i32.const ${i})) (then (f32.store offset=${4 * i} ${get(ptr)} (f32x4.extract_lane ${i} ${get(v)}))))`;
  return [`(f32.store ${get(ptr)} (f32x4.extract_lane 0 ${get(v)}))`, lane(1), lane(2)].join('\n      ');
}

/** (a0 + a1) + (a2 + a3) of a vector local: the one order every row sum is finished in. */
const lanesSum = (v) =>
  `(f32.add (f32.add (f32x4.extract_lane 0 ${get(v)}) (f32x4.extract_lane 1 ${get(v)})) (f32.add (f32x4.extract_lane 2 ${get(v)}) (f32x4.extract_lane 3 ${get(v)})))`;

/**
 * For every pass over a row: $live entries, $end = the first byte past its whole vectors, $tail = live mod 4 (the
 * tail vector's live lanes), $p = the row's start.
 */
function rowBounds(row) {
  return [
    set('end', `(i32.add ${get(row)} (i32.shl (i32.and ${get('live')} (i32.const -4)) (i32.const 2)))`),
    set('tail', `(i32.and ${get('live')} (i32.const 3))`),
    set('p', get(row)),
  ].join('\n      ');
}

/** `body` for each whole vector of the row at $p (advanced by 16), then `tail` once if $tail > 0 ($p at the tail). */
function overRow(row, body, tail) {
  return `${rowBounds(row)}
      (block $whole (loop $each
        (br_if $whole (i32.ge_u ${get('p')} ${get('end')}))
        ${body.join('\n        ')}
        ${set('p', `(i32.add ${get('p')} (i32.const 16))`)}
        (br $each)))
      (if ${get('tail')} (then
        ${tail.join('\n        ')}))`;
}

/** $m = fl(max_j s_j · scale) over the $live entries of `row` (NaN propagates: f32x4.max and f32.max do). */
function rowMax(row) {
  return `${set('acc', f4('-inf'))}
      ${overRow(row, [set('acc', `(f32x4.max ${get('acc')} (v128.load ${get('p')}))`)], [loadTail('v', 'p', f4('-inf')), set('acc', `(f32x4.max ${get('acc')} ${get('v')})`)])}
      ${set('m', `(f32.mul (f32.max (f32.max (f32x4.extract_lane 0 ${get('acc')}) (f32x4.extract_lane 1 ${get('acc')})) (f32.max (f32x4.extract_lane 2 ${get('acc')}) (f32x4.extract_lane 3 ${get('acc')}))) ${get('scale')})`)}
      ${set('mv', `(f32x4.splat ${get('m')})`)}`;
}

/** $e = exp(max(fl(fl(v·scale) − m), −104)), per lane, for the raw scores in local v. */
function expShifted(v) {
  return [set('y', `(f32x4.max ${sub(mul(get(v), get('sv')), get('mv'))} ${get('lo')})`), ...expCore('y')].join('\n        ');
}

/** $cv = splat(exp(fl(m − lse))) for the row's $m and $l. */
function rowScale() {
  return `${set('y', `(f32x4.max (f32x4.splat (f32.sub ${get('m')} ${get('l')})) ${get('lo')})`)}
      ${expCore('y').join('\n      ')}
      ${set('cv', get('e'))}`;
}

/** Zeros over entries [n, width) of `row`: the masked part the GEMMs read. */
const zeroRest = (row) =>
  `(memory.fill (i32.add ${get(row)} (i32.shl ${get('live')} (i32.const 2))) (i32.const 0) (i32.shl (i32.sub ${get('width')} ${get('live')}) (i32.const 2)))`;

const rowLocals = `(local $ri i32) (local $row i32) (local $live i32) (local $end i32) (local $tail i32) (local $p i32)
    (local $v v128) (local $y v128) (local $acc v128) (local $mv v128) (local $cv v128) (local $sv v128)
    (local $m f32) (local $l f32) ${expLocals}`;
const rowConstants = constants('rows', [...expConstants, ['lo', f4(kExpLo)]]);

/** The loop over `rows` rows of `ld` floats, row r of causal position first + r; `body` sees $row, $n. */
function overRows(body, extraPointers = []) {
  return `${set('sv', `(f32x4.splat ${get('scale')})`)}
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u ${get('ri')} ${get('rows')}))
      ${set('row', `(i32.add ${get('s')} (i32.shl (i32.mul ${get('ri')} ${get('ld')}) (i32.const 2)))`)}
      ${extraPointers.join('\n      ')}
      ${set('live', `(i32.add (i32.add ${get('first')} ${get('ri')}) (i32.const 1))`)}
      ${body.join('\n      ')}
      ${set('ri', `(i32.add ${get('ri')} (i32.const 1))`)}
      (br $rowLoop)))`;
}

/** The float64 natural log for lse: only ever of a row's Σ e ≥ 1 (NaN and +∞ pass through). */
function logFunction() {
  // log x = k·ln 2 + 2·atanh(z), x = 2^k·f with f in [√½, √2), z = (f − 1)/(f + 1), |z| ≤ 0.1716: the series
  // 2z·Σ z^(2i)/(2i + 1) through z¹⁸ leaves a truncation below 4e-16 relative, far under float32's rounding.
  const terms = Array.from({ length: 10 }, (_, i) => 1 / (2 * (9 - i) + 1));
  const horner = terms.slice(1).reduce((acc, c) => `(f64.add (f64.mul ${acc} (local.get $w)) (f64.const ${c}))`, `(f64.const ${terms[0]})`);
  return `
  (func $log (param $x f64) (result f64)
    (local $bits i64) (local $k f64) (local $f f64) (local $z f64) (local $w f64)
    (if (i32.eqz (f64.lt (local.get $x) (f64.const inf))) (then (return (local.get $x))))
    (local.set $bits (i64.reinterpret_f64 (local.get $x)))
    (local.set $k (f64.convert_i64_s (i64.sub (i64.shr_u (local.get $bits) (i64.const 52)) (i64.const 1023))))
    (local.set $f (f64.reinterpret_i64 (i64.or (i64.and (local.get $bits) (i64.const 0x000fffffffffffff)) (i64.const 0x3ff0000000000000))))
    (if (f64.gt (local.get $f) (f64.const 0x1.6a09e667f3bcdp+0)) (then
      (local.set $f (f64.mul (local.get $f) (f64.const 0.5)))
      (local.set $k (f64.add (local.get $k) (f64.const 1)))))
    (local.set $z (f64.div (f64.sub (local.get $f) (f64.const 1)) (f64.add (local.get $f) (f64.const 1))))
    (local.set $w (f64.mul (local.get $z) (local.get $z)))
    (f64.add (f64.mul (local.get $k) (f64.const 0x1.62e42fefa39efp-1)) (f64.mul (f64.mul (f64.const 2) (local.get $z)) ${horner})))`;
}

// softmaxRows: the forward. Scores in place → probabilities; lse[r] written when storeLse ≠ 0.
function softmaxRows() {
  const sumPass = overRow('row',
    [set('v', `(v128.load ${get('p')})`), expShifted('v'), `(v128.store ${get('p')} ${get('e')})`, set('acc', add(get('acc'), get('e')))],
    [loadTail('v', 'p', f4(0)), expShifted('v'), storeTail('p', 'e'),
      set('acc', add(get('acc'), `(v128.and ${get('e')} (i32x4.gt_s (i32x4.splat ${get('tail')}) ${laneIndex}))`))]);
  const scalePass = overRow('row',
    [`(v128.store ${get('p')} ${mul(`(v128.load ${get('p')})`, get('cv'))})`],
    [loadTail('v', 'p', f4(0)), set('v', mul(get('v'), get('cv'))), storeTail('p', 'v')]);
  return `
  (func (export "softmaxRows") (param $s i32) (param $ld i32) (param $rows i32) (param $first i32) (param $width i32)
    (param $scale f32) (param $lse i32) (param $storeLse i32)
    ${rowLocals} ${rowConstants.decl}
    ${rowConstants.init}
    ${overRows([
      rowMax('row'),
      set('acc', f4(0)),
      sumPass,
      set('l', `(f32.demote_f64 (f64.add (f64.promote_f32 ${get('m')}) (call $log (f64.promote_f32 ${lanesSum('acc')}))))`),
      `(if ${get('storeLse')} (then (f32.store (i32.add ${get('lse')} (i32.shl ${get('ri')} (i32.const 2))) ${get('l')})))`,
      rowScale(),
      scalePass,
      zeroRest('row'),
    ])})`;
}

// probsRows: the backward's rebuild from the saved lse[r]: the forward's p bit for bit (see the header).
function probsRows() {
  const pass = overRow('row',
    [set('v', `(v128.load ${get('p')})`), expShifted('v'), `(v128.store ${get('p')} ${mul(get('e'), get('cv'))})`],
    [loadTail('v', 'p', f4(0)), expShifted('v'), set('v', mul(get('e'), get('cv'))), storeTail('p', 'v')]);
  return `
  (func (export "probsRows") (param $s i32) (param $ld i32) (param $rows i32) (param $first i32) (param $width i32)
    (param $scale f32) (param $lse i32)
    ${rowLocals} ${rowConstants.decl}
    ${rowConstants.init}
    ${overRows([
      rowMax('row'),
      set('l', `(f32.load (i32.add ${get('lse')} (i32.shl ${get('ri')} (i32.const 2))))`),
      rowScale(),
      pass,
      zeroRest('row'),
    ])})`;
}

// softmaxBackward: ds_j = fl(fl(p_j·fl(dp_j − D))·scale), D = Σ_j p_j·dp_j, over the live entries; ds
// overwrites dp (row r at ds + 4·r·ldD), zeros past n. The scale is folded in here so that dq = ds·k and
// dk = dsᵀ·q are plain GEMMs.
function softmaxBackward() {
  const dotPass = overRow('drow',
    [set('acc', add(get('acc'), mul(`(v128.load ${get('q')})`, `(v128.load ${get('p')})`))), set('q', `(i32.add ${get('q')} (i32.const 16))`)],
    [loadTail('v', 'q', f4(0)), loadTail('y', 'p', f4(0)), set('acc', add(get('acc'), mul(get('v'), get('y'))))]);
  const gradPass = overRow('drow',
    [`(v128.store ${get('p')} ${mul(mul(`(v128.load ${get('q')})`, sub(`(v128.load ${get('p')})`, get('mv'))), get('sv'))})`,
      set('q', `(i32.add ${get('q')} (i32.const 16))`)],
    [loadTail('v', 'q', f4(0)), loadTail('y', 'p', f4(0)), set('v', mul(mul(get('v'), sub(get('y'), get('mv'))), get('sv'))), storeTail('p', 'v')]);
  return `
  (func (export "softmaxBackwardRows") (param $s i32) (param $ld i32) (param $ds i32) (param $ldD i32) (param $rows i32)
    (param $first i32) (param $width i32) (param $scale f32)
    ${rowLocals} (local $drow i32) (local $q i32)
    ${overRows([
      set('acc', f4(0)),
      set('q', get('row')),
      dotPass,
      set('mv', `(f32x4.splat ${lanesSum('acc')})`),
      set('q', get('row')),
      gradPass,
      zeroRest('drow'),
    ], [set('drow', `(i32.add ${get('ds')} (i32.shl (i32.mul ${get('ri')} ${get('ldD')}) (i32.const 2)))`)])})`;
}

export default function generate() {
  const text = `;; Generated by src/kernels/wasm/attention.wat.mjs: causal attention's softmax rows, their lse, the softmax backward.
(module
  (import "env" "memory" (memory 0))
  ${rowConstants.globals}
${logFunction()}
${softmaxRows()}
${probsRows()}
${softmaxBackward()}
)
`;
  return [{ name: 'attention', text, features: { simd: true } }];
}
