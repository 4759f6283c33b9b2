// Generator of the WebAssembly text for our float32 GEMM, C = act(A·B + bias), run at build time by
// scripts/build-wasm.mjs (which assembles each variant with wabt). A generator rather than a hand-written
// .wat because the register-blocked micro-kernel is MR×NR/4 accumulators written out in full, and the same
// source must give two variants: f32x4.relaxed_madd (one fused multiply-add, when the runtime has relaxed
// SIMD) and f32x4.mul + f32x4.add (everywhere else).
//
// Layout (BLIS): for each NC-wide column block and KC-deep slab of k, B is packed into panels of NR columns
// ([k][NR], zero-padded), then for each MC-high row block A is packed into panels of MR rows ([k][MR],
// zero-padded), and the micro-kernel runs every (NR panel, MR panel) pair: a B panel (KC·NR floats) stays in
// L1 while the A block (MC·KC) streams from L2. Packing takes any row/column strides, so the four transpose
// cases and broadcast batches cost the same inner loop. Blocking depends on the shapes only, never on threads,
// so the bits of a result depend on the inputs and the variant alone.
//
// Registers: V8 on x64 gives wasm 15 xmm registers (xmm15 is its scratch), and its scheduler issues every
// broadcast of A in a k step before the step's multiply-adds. So a tile needs MR·NR/4 accumulators + NR/4 B
// vectors + MR broadcasts live at once: 4×8 takes 8 + 2 + 4 = 14 and runs without spills; 6×8 (XNNPACK's
// choice in C) spilled four registers inside the k loop and ran at half the speed, and unrolling k by 2 does
// the same to 4×8 (both measured: ~20 vs ~44 GFLOPS on 1024×256×256). Without FMA the products are consumed
// as they come, so 4×8 fits there too, and on this machine's separate multiply and add pipes it runs as fast.

/** Micro-kernel and blocking constants of one variant. */
const variants = {
  'gemm-relaxed': { fma: true, mr: 4, nr: 8, kc: 256, mc: 128, nc: 2048, unroll: 1 },
  gemm: { fma: false, mr: 4, nr: 8, kc: 256, mc: 128, nc: 2048, unroll: 1 },
};

const i32 = (n) => `(i32.const ${n})`;
const get = (name) => `(local.get $${name})`;
const set = (name, value) => `(local.set $${name} ${value})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const mul = (a, b) => `(i32.mul ${a} ${b})`;
const range = (n) => Array.from({ length: n }, (_, i) => i);

/** The micro-kernel: C[MR×NR] (ldc bytes apart) from kc steps over packed A (pa) and B (pb), then the epilogue. */
function microKernel({ fma, mr, nr, unroll }) {
  const nv = nr / 4;
  const acc = (r, v) => `c${r}_${v}`;
  const madd = (a, b, c) => (fma ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`);
  const locals = [
    ...range(nv).map((v) => `(local $b${v} v128)`),
    '(local $a v128) (local $x v128) (local $row i32)',
    ...range(mr).map((r) => range(nv).map((v) => `(local $${acc(r, v)} v128)`).join(' ')),
  ];
  const oneK = (u) => [
    ...range(nv).map((v) => set(`b${v}`, `(v128.load offset=${16 * (v + u * nv)} ${get('pb')})`)),
    ...range(mr).flatMap((r) => [
      set('a', `(v128.load32_splat offset=${4 * (r + u * mr)} ${get('pa')})`),
      ...range(nv).map((v) => set(acc(r, v), madd(get('a'), get(`b${v}`), get(acc(r, v))))),
    ]),
  ];
  const advance = (steps) => [set('pa', add(get('pa'), i32(4 * mr * steps))), set('pb', add(get('pb'), i32(4 * nr * steps)))];
  // k unrolled `unroll` times (fewer loop branches and V8 stack checks), then the remainder one k at a time
  const unrolled = [...range(unroll).flatMap(oneK), ...advance(unroll)];
  const single = [...oneK(0), ...advance(1)];
  // Epilogue, row by row: + C (later k slabs), + bias (first slab), activation (last slab). Branches on
  // `mode` run once per tile and slab, outside the k loop.
  const epilogue = range(mr).flatMap((r) => [
    set('row', r === 0 ? get('c') : add(get('row'), get('ldc'))),
    ...range(nv).flatMap((v) => [
      set('x', get(acc(r, v))),
      `(if (i32.and ${get('mode')} ${i32(1)}) (then ${set('x', `(f32x4.add ${get('x')} (v128.load offset=${16 * v} ${get('row')}))`)}))`,
      `(if (i32.and ${get('mode')} ${i32(2)}) (then ${set('x', `(f32x4.add ${get('x')} (v128.load offset=${16 * v} ${get('bias')}))`)}))`,
      `(if (i32.and ${get('mode')} ${i32(4)}) (then ${set('x', `(call $activate ${get('x')})`)}))`,
      `(v128.store offset=${16 * v} ${get('row')} ${get('x')})`,
    ]),
  ]);
  return `
  (func $ukernel (param $kc i32) (param $pa i32) (param $pb i32) (param $c i32) (param $ldc i32) (param $bias i32) (param $mode i32)
    ${locals.join('\n    ')}
    (if (i32.ge_u ${get('kc')} ${i32(unroll)}) (then
      (loop $ku
        ${unrolled.join('\n        ')}
        (br_if $ku (i32.ge_u (local.tee $kc (i32.sub ${get('kc')} ${i32(unroll)})) ${i32(unroll)})))))
    (if ${get('kc')} (then
      (loop $k
        ${single.join('\n        ')}
        (br_if $k (local.tee $kc (i32.sub ${get('kc')} ${i32(1)}))))))
    ${epilogue.join('\n    ')})`;
}

/**
 * Pack an mc×kc block of a strided matrix (element (i, k) at src + i·rs + k·cs, strides in bytes) into panels of
 * `w` rows, each [kc][w] floats, rows past mc zero. Used for A (w = MR) and for Bᵀ (w = NR: B's columns are the
 * "rows", so one routine packs both operands).
 */
function packFunction(name, w) {
  return `
  (func $${name} (param $dst i32) (param $src i32) (param $rs i32) (param $cs i32) (param $mc i32) (param $kc i32)
    (local $i0 i32) (local $rows i32) (local $k i32) (local $r i32) (local $s i32) (local $d i32)
    (block $done (loop $panels
      (br_if $done (i32.ge_u ${get('i0')} ${get('mc')}))
      ${set('rows', `(select (i32.sub ${get('mc')} ${get('i0')}) ${i32(w)} (i32.lt_u (i32.sub ${get('mc')} ${get('i0')}) ${i32(w)}))`)}
      (if (i32.and (i32.eq ${get('rs')} ${i32(4)}) (i32.eq ${get('rows')} ${i32(w)}))
        (then
          ;; the panel's rows are adjacent in memory: copy ${w} floats per k
          ${set('s', add(get('src'), mul(get('i0'), get('rs'))))}
          ${set('k', i32(0))}
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u ${get('k')} ${get('kc')}))
            ${copyFloats(w)}
            ${set('dst', add(get('dst'), i32(4 * w)))}
            ${set('s', add(get('s'), get('cs')))}
            ${set('k', add(get('k'), i32(1)))}
            (br $kl))))
        (else
          ;; one row (or zero padding) at a time: its k run is contiguous when cs is 4, and the writes stay in the panel
          ${set('r', i32(0))}
          (block $rd (loop $rl
            (br_if $rd (i32.ge_u ${get('r')} ${i32(w)}))
            ${set('s', add(get('src'), mul(add(get('i0'), get('r')), get('rs'))))}
            ${set('d', add(get('dst'), mul(get('r'), i32(4))))}
            ${set('k', i32(0))}
            (if (i32.lt_u ${get('r')} ${get('rows')})
              (then (block $kd (loop $kl
                (br_if $kd (i32.ge_u ${get('k')} ${get('kc')}))
                (f32.store ${get('d')} (f32.load ${get('s')}))
                ${set('s', add(get('s'), get('cs')))}
                ${set('d', add(get('d'), i32(4 * w)))}
                ${set('k', add(get('k'), i32(1)))}
                (br $kl))))
              (else (block $kd (loop $kl
                (br_if $kd (i32.ge_u ${get('k')} ${get('kc')}))
                (f32.store ${get('d')} (f32.const 0))
                ${set('d', add(get('d'), i32(4 * w)))}
                ${set('k', add(get('k'), i32(1)))}
                (br $kl)))))
            ${set('r', add(get('r'), i32(1)))}
            (br $rl)))
          ${set('dst', add(get('dst'), mul(get('kc'), i32(4 * w))))}))
      ${set('i0', add(get('i0'), i32(w)))}
      (br $panels))))`;
}

/** Copy w floats from $s to $dst with the widest loads that fit. */
function copyFloats(w) {
  const out = [];
  let at = 0;
  for (; at + 4 <= w; at += 4) out.push(`(v128.store offset=${4 * at} ${get('dst')} (v128.load offset=${4 * at} ${get('s')}))`);
  for (; at + 2 <= w; at += 2) out.push(`(i64.store offset=${4 * at} ${get('dst')} (i64.load offset=${4 * at} ${get('s')}))`);
  for (; at < w; at++) out.push(`(f32.store offset=${4 * at} ${get('dst')} (f32.load offset=${4 * at} ${get('s')}))`);
  return out.join('\n            ');
}

/** The whole module of one variant. */
export function gemmWat({ fma, mr, nr, kc, mc, nc, unroll }) {
  if (nr % 4 !== 0 || mc % mr !== 0) throw new Error(`gemm.wat.mjs: NR must be a multiple of 4 and MC of MR (got MR ${mr}, NR ${nr}, MC ${mc})`);
  return `;; Generated by src/kernels/wasm/gemm.wat.mjs (${fma ? 'relaxed-SIMD FMA' : 'plain mul + add'}, MR ${mr}, NR ${nr}, KC ${kc}, MC ${mc}, NC ${nc}).
(module
  (import "env" "memory" (memory 0))
  (global $act (mut i32) (i32.const 0))
  (global $alpha (mut v128) (v128.const i32x4 0 0 0 0))
  (global (export "kMR") i32 ${i32(mr)})
  (global (export "kNR") i32 ${i32(nr)})
  (global (export "kKC") i32 ${i32(kc)})
  (global (export "kMC") i32 ${i32(mc)})
  (global (export "kNC") i32 ${i32(nc)})
  (global (export "kFma") i32 ${i32(fma ? 1 : 0)})

  ;; 1 relu, 2 relu6, 3 leaky relu (x < 0 → alpha·x). max/min propagate NaN, as x < 0 ? 0 : x does.
  (func $activate (param $x v128) (result v128)
    (if (i32.eq (global.get $act) ${i32(1)}) (then (return (f32x4.max (local.get $x) (v128.const f32x4 0 0 0 0)))))
    (if (i32.eq (global.get $act) ${i32(2)}) (then (return (f32x4.min (f32x4.max (local.get $x) (v128.const f32x4 0 0 0 0)) (v128.const f32x4 6 6 6 6)))))
    (v128.bitselect (f32x4.mul (local.get $x) (global.get $alpha)) (local.get $x) (f32x4.lt (local.get $x) (v128.const f32x4 0 0 0 0))))
${microKernel({ fma, mr, nr, unroll })}
${packFunction('packA', mr)}
${packFunction('packB', nr)}

  (func $roundUp (param $x i32) (param $to i32) (result i32)
    (i32.mul (i32.div_u (i32.add (local.get $x) (i32.sub (local.get $to) (i32.const 1))) (local.get $to)) (local.get $to)))
  (func $min (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_u (local.get $a) (local.get $b))))

  ;; Bytes of scratch gemm() needs for these sizes: tile | bias | packed B | packed A, each 16-byte aligned.
  (func $scratchBytes (export "scratchBytes") (param $m i32) (param $n i32) (param $k i32) (result i32)
    (local $kc i32)
    (local.set $kc (call $min (local.get $k) ${i32(kc)}))
    (i32.add (i32.add ${i32(4 * mr * nr)} (i32.mul (call $roundUp (local.get $n) ${i32(nr)}) (i32.const 4)))
      (i32.add (i32.mul (i32.mul (local.get $kc) (call $roundUp (call $min (local.get $n) ${i32(nc)}) ${i32(nr)})) (i32.const 4))
        (i32.mul (i32.mul (local.get $kc) (call $roundUp (call $min (local.get $m) ${i32(mc)}) ${i32(mr)})) (i32.const 4)))))

  ;; Copy a rows×cols corner between C (ldc bytes per row) and the MR×NR tile; toTile zero-fills the rest first.
  (func $edgeCopy (param $c i32) (param $ldc i32) (param $tile i32) (param $rows i32) (param $cols i32) (param $toTile i32)
    (local $r i32) (local $j i32) (local $cr i32) (local $tr i32)
    (if (local.get $toTile) (then (memory.fill (local.get $tile) (i32.const 0) ${i32(4 * mr * nr)})))
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $cr (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $ldc))))
      (local.set $tr (i32.add (local.get $tile) (i32.mul (local.get $r) ${i32(4 * nr)})))
      (if (local.get $toTile)
        (then (memory.copy (local.get $tr) (local.get $cr) (i32.mul (local.get $cols) (i32.const 4))))
        (else (memory.copy (local.get $cr) (local.get $tr) (i32.mul (local.get $cols) (i32.const 4)))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rl))))

  ;; C[m×n] (row stride ldc elements) = act(A[m×k]·B[k×n] + bias). A(i, k) is at a + 4·(i·rsA + k·csA), B(k, j) at
  ;; b + 4·(k·rsB + j·csB). biasMode: 0 none, 1 one value per column (bias[j]), 2 one value for all (bias[0]).
  ;; act: 0 linear, 1 relu, 2 relu6, 3 leaky relu with alpha. scratch: scratchBytes(m, n, k) bytes, 16-aligned.
  ;; accumulate 0: every element of C is written (C is never read before it is written), whatever k is, 0
  ;; included; accumulate 1: C += A·B (+ bias), the product added to C's values (a gradient summed over uses).
  (func (export "gemm") (param $m i32) (param $n i32) (param $k i32)
    (param $a i32) (param $rsA i32) (param $csA i32) (param $b i32) (param $rsB i32) (param $csB i32)
    (param $c i32) (param $ldc i32) (param $bias i32) (param $biasMode i32) (param $actKind i32) (param $alphaValue f32)
    (param $scratch i32) (param $accumulate i32)
    (local $tile i32) (local $biasBuf i32) (local $packB i32) (local $packA i32)
    (local $jc i32) (local $nc i32) (local $pc i32) (local $kc i32) (local $ic i32) (local $mc i32) (local $jr i32) (local $ir i32)
    (local $mode i32) (local $j i32) (local $cp i32) (local $rows i32) (local $cols i32) (local $ldcB i32)
    (if (i32.or (i32.eqz (local.get $m)) (i32.eqz (local.get $n))) (then (return)))
    (global.set $act (local.get $actKind))
    (global.set $alpha (f32x4.splat (local.get $alphaValue)))
    (local.set $rsA (i32.shl (local.get $rsA) (i32.const 2)))
    (local.set $csA (i32.shl (local.get $csA) (i32.const 2)))
    (local.set $rsB (i32.shl (local.get $rsB) (i32.const 2)))
    (local.set $csB (i32.shl (local.get $csB) (i32.const 2)))
    (local.set $ldcB (i32.shl (local.get $ldc) (i32.const 2)))
    (local.set $tile (local.get $scratch))
    (local.set $biasBuf (i32.add (local.get $tile) ${i32(4 * mr * nr)}))
    (local.set $packB (i32.add (local.get $biasBuf) (i32.mul (call $roundUp (local.get $n) ${i32(nr)}) (i32.const 4))))
    (local.set $packA (i32.add (local.get $packB)
      (i32.mul (i32.mul (call $min (local.get $k) ${i32(kc)}) (call $roundUp (call $min (local.get $n) ${i32(nc)}) ${i32(nr)})) (i32.const 4))))
    ;; the bias as n floats padded to a whole number of panels, so the epilogue loads whole vectors
    (if (local.get $biasMode) (then
      (memory.fill (local.get $biasBuf) (i32.const 0) (i32.mul (call $roundUp (local.get $n) ${i32(nr)}) (i32.const 4)))
      (block $bd (loop $bl
        (br_if $bd (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $biasBuf) (i32.shl (local.get $j) (i32.const 2)))
          (f32.load (select (local.get $bias) (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))) (i32.eq (local.get $biasMode) (i32.const 2)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $bl)))))
    (loop $jcl
      (local.set $nc (call $min (i32.sub (local.get $n) (local.get $jc)) ${i32(nc)}))
      (local.set $pc (i32.const 0))
      ;; at least one k slab, so that k = 0 still writes act(bias) (or zeros)
      (loop $pcl
        (local.set $kc (call $min (i32.sub (local.get $k) (local.get $pc)) ${i32(kc)}))
        (call $packB (local.get $packB) (i32.add (local.get $b) (i32.add (i32.mul (local.get $pc) (local.get $rsB)) (i32.mul (local.get $jc) (local.get $csB))))
          (local.get $csB) (local.get $rsB) (local.get $nc) (local.get $kc))
        (local.set $mode (i32.or
          (select (i32.const 1) (i32.or (select (i32.const 2) (i32.const 0) (local.get $biasMode)) (select (i32.const 1) (i32.const 0) (local.get $accumulate))) (local.get $pc))
          (select (i32.const 4) (i32.const 0) (i32.and (i32.ge_u (i32.add (local.get $pc) (local.get $kc)) (local.get $k)) (i32.ne (local.get $actKind) (i32.const 0))))))
        (local.set $ic (i32.const 0))
        (loop $icl
          (local.set $mc (call $min (i32.sub (local.get $m) (local.get $ic)) ${i32(mc)}))
          (call $packA (local.get $packA) (i32.add (local.get $a) (i32.add (i32.mul (local.get $ic) (local.get $rsA)) (i32.mul (local.get $pc) (local.get $csA))))
            (local.get $rsA) (local.get $csA) (local.get $mc) (local.get $kc))
          (local.set $jr (i32.const 0))
          (loop $jrl
            (local.set $cols (call $min (i32.sub (local.get $nc) (local.get $jr)) ${i32(nr)}))
            (local.set $ir (i32.const 0))
            (loop $irl
              (local.set $rows (call $min (i32.sub (local.get $mc) (local.get $ir)) ${i32(mr)}))
              (local.set $cp (i32.add (local.get $c) (i32.shl
                (i32.add (i32.mul (i32.add (local.get $ic) (local.get $ir)) (local.get $ldc)) (i32.add (local.get $jc) (local.get $jr))) (i32.const 2))))
              (if (i32.and (i32.eq (local.get $rows) ${i32(mr)}) (i32.eq (local.get $cols) ${i32(nr)}))
                (then
                  (call $ukernel (local.get $kc) (i32.add (local.get $packA) (i32.mul (local.get $ir) (i32.shl (local.get $kc) (i32.const 2))))
                    (i32.add (local.get $packB) (i32.mul (local.get $jr) (i32.shl (local.get $kc) (i32.const 2))))
                    (local.get $cp) (local.get $ldcB) (i32.add (local.get $biasBuf) (i32.shl (i32.add (local.get $jc) (local.get $jr)) (i32.const 2))) (local.get $mode)))
                (else
                  ;; a partial tile goes through the scratch tile, so no store lands outside C
                  (call $edgeCopy (local.get $cp) (local.get $ldcB) (local.get $tile) (local.get $rows) (local.get $cols) (i32.and (local.get $mode) (i32.const 1)))
                  (call $ukernel (local.get $kc) (i32.add (local.get $packA) (i32.mul (local.get $ir) (i32.shl (local.get $kc) (i32.const 2))))
                    (i32.add (local.get $packB) (i32.mul (local.get $jr) (i32.shl (local.get $kc) (i32.const 2))))
                    (local.get $tile) ${i32(4 * nr)} (i32.add (local.get $biasBuf) (i32.shl (i32.add (local.get $jc) (local.get $jr)) (i32.const 2))) (local.get $mode))
                  (call $edgeCopy (local.get $cp) (local.get $ldcB) (local.get $tile) (local.get $rows) (local.get $cols) (i32.const 0))))
              (local.set $ir (i32.add (local.get $ir) ${i32(mr)}))
              (br_if $irl (i32.lt_u (local.get $ir) (local.get $mc))))
            (local.set $jr (i32.add (local.get $jr) ${i32(nr)}))
            (br_if $jrl (i32.lt_u (local.get $jr) (local.get $nc))))
          (local.set $ic (i32.add (local.get $ic) (local.get $mc)))
          (br_if $icl (i32.lt_u (local.get $ic) (local.get $m))))
        (local.set $pc (i32.add (local.get $pc) (local.get $kc)))
        (br_if $pcl (i32.lt_u (local.get $pc) (local.get $k))))
      (local.set $jc (i32.add (local.get $jc) (local.get $nc)))
      (br_if $jcl (i32.lt_u (local.get $jc) (local.get $n)))))
)
`;
}

/** What scripts/build-wasm.mjs assembles: one module per variant. */
export default function generate() {
  return Object.entries(variants).map(([name, v]) => ({ name, text: gemmWat(v), features: { simd: true, relaxed_simd: v.fma } }));
}
