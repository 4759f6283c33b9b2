;; shardtrain's AdamW shard kernels in WebAssembly SIMD (f32x4), compiled at build time by
;; scripts/build-wasm.mjs (wabt) into dist/src/kernels/wasm/adamw.wasm. The same per-element formula as
;; src/kernels/adamw-js.ts, in float32:
;;
;;   g  = clamp(Σ_r slot_r · invSlots, ±clip) · clipScale + l2·p
;;   m' = β1·m + (1−β1)·g;  v' = β2·v + ((1−β2)·g)·g;  v̂ = amsgrad ? max(v', v_max) : v'
;;   p' = (p·decayPre − (stepSize·m') / (√v̂·sqrtScale + ε)) · decayPost
;;
;; Cautious weight decay (the $cautious variant): decayPre and decayPost are replaced by 1 where the update
;; and p disagree in sign, i.e. unless (m' ≥ 0 and p ≥ 0) or (m' ≤ 0 and p ≤ 0) — u·p ≥ 0 with u of the sign
;; of m', tested on the signs because the float32 product m'·p can underflow to −0.
;;
;; Every operation is a correctly rounded IEEE float32 add/mul/div/sqrt (no fused multiply-add, no
;; approximate reciprocal), evaluated in the order written, so the vector body and the scalar prologue and
;; tail give the same bits for the same element: results never depend on where a range starts, hence never
;; on the thread count. Clamps and the AMSGrad max use `x < y ? y : x` (f32x4.pmax/pmin, and `select` in the
;; scalar code) so NaN in the gradient propagates in both.
;;
;; The memory is the shard's shared WebAssembly.Memory: params | m | v | v_max? | grad slot 0 … R−1. The JS
;; side passes byte addresses of each region; all address arithmetic is unsigned 32-bit.

(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; sumSquares' lanes 1..7 (lane 0 is the return value): read back through lane1 … lane7, which are plain
  ;; calls, so nothing is allocated per call. Globals are per instance, and instances are per thread.
  (global $lane1 (mut f64) (f64.const 0))
  (global $lane2 (mut f64) (f64.const 0))
  (global $lane3 (mut f64) (f64.const 0))
  (global $lane4 (mut f64) (f64.const 0))
  (global $lane5 (mut f64) (f64.const 0))
  (global $lane6 (mut f64) (f64.const 0))
  (global $lane7 (mut f64) (f64.const 0))
  (func (export "lane1") (result f64) (global.get $lane1))
  (func (export "lane2") (result f64) (global.get $lane2))
  (func (export "lane3") (result f64) (global.get $lane3))
  (func (export "lane4") (result f64) (global.get $lane4))
  (func (export "lane5") (result f64) (global.get $lane5))
  (func (export "lane6") (result f64) (global.get $lane6))
  (func (export "lane7") (result f64) (global.get $lane7))

  ;; Σ of R slots at byte offset $i (slot r at $g + r·$gstride), float64, in slot order (as adamw-js.ts).
  ;; Returns one float64 element.
  (func $slotSum64 (param $g i32) (param $gstride i32) (param $nslots i32) (param $i i32) (result f64)
    (local $sum f64) (local $r i32) (local $a i32)
    (local.set $a (i32.add (local.get $g) (local.get $i)))
    (local.set $sum (f64.promote_f32 (f32.load (local.get $a))))
    (local.set $r (i32.const 1))
    (block $done
      (loop $slots
        (br_if $done (i32.ge_u (local.get $r) (local.get $nslots)))
        (local.set $a (i32.add (local.get $a) (local.get $gstride)))
        (local.set $sum (f64.add (local.get $sum) (f64.promote_f32 (f32.load (local.get $a)))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $slots)))
    (local.get $sum))

  ;; clamp(x, ±clip) as `x < −clip ? −clip : x`, then `clip < x ? clip : x` (NaN stays NaN); squared.
  (func $clampSq64 (param $x f64) (param $clip f64) (result f64)
    (local.set $x (select (f64.neg (local.get $clip)) (local.get $x)
                          (f64.lt (local.get $x) (f64.neg (local.get $clip)))))
    (local.set $x (select (local.get $clip) (local.get $x) (f64.lt (local.get $clip) (local.get $x))))
    (f64.mul (local.get $x) (local.get $x)))

  ;; Sum of squares of the clamped replica-mean gradient over elements [start, end), in float64, into eight
  ;; lanes: element start+k goes to lane k & 7 *relative to the caller's rotation*; the caller passes the
  ;; lanes already rotated (l_j = lanes[(lane0 + j) & 7]) and stores them back the same way. Each lane is a
  ;; running sum in element order, exactly as adamw-js.ts accumulates it, so the two give the same bits.
  ;; Eight lanes (four f64x2 accumulators), not four: each accumulator's add waits for the previous one, and
  ;; with two of them the loop ran at one element per cycle, half what memory delivers.
  (func (export "sumSquares")
    (param $g i32) (param $gstride i32) (param $nslots i32) (param $start i32) (param $end i32)
    (param $invSlots f64) (param $clip f64)
    (param $l0 f64) (param $l1 f64) (param $l2 f64) (param $l3 f64)
    (param $l4 f64) (param $l5 f64) (param $l6 f64) (param $l7 f64)
    (result f64)
    (local $i i32) (local $stop i32) (local $vend i32)
    (local $acc01 v128) (local $acc23 v128) (local $acc45 v128) (local $acc67 v128)
    (local $s01 v128) (local $s23 v128) (local $s45 v128) (local $s67 v128)
    (local $inv v128) (local $hi v128) (local $lo v128) (local $x v128)
    (local $r i32) (local $a i32) (local $b i32)
    (local.set $i (i32.shl (local.get $start) (i32.const 2)))
    (local.set $stop (i32.shl (local.get $end) (i32.const 2)))
    ;; vector part: whole groups of 8 from start (unaligned loads are fine; lanes follow k & 7)
    (local.set $vend (i32.add (local.get $i)
      (i32.and (i32.sub (local.get $stop) (local.get $i)) (i32.const -32))))
    (local.set $acc01 (f64x2.replace_lane 1 (f64x2.splat (local.get $l0)) (local.get $l1)))
    (local.set $acc23 (f64x2.replace_lane 1 (f64x2.splat (local.get $l2)) (local.get $l3)))
    (local.set $acc45 (f64x2.replace_lane 1 (f64x2.splat (local.get $l4)) (local.get $l5)))
    (local.set $acc67 (f64x2.replace_lane 1 (f64x2.splat (local.get $l6)) (local.get $l7)))
    (local.set $inv (f64x2.splat (local.get $invSlots)))
    (local.set $hi (f64x2.splat (local.get $clip)))
    (local.set $lo (f64x2.neg (local.get $hi)))
    ;; one slot, invSlots = 1, no value clip (the usual case): ×1 and the clamp to ±∞ are exact identities
    ;; (NaN stays NaN), so squaring the promoted gradient gives the same bits with two loads per 8 elements
    (if (i32.and (i32.eq (local.get $nslots) (i32.const 1))
                 (i32.and (f64.eq (local.get $invSlots) (f64.const 1)) (f64.eq (local.get $clip) (f64.const inf))))
      (then
        (block $v0done
          (loop $vec0
            (br_if $v0done (i32.ge_u (local.get $i) (local.get $vend)))
            (local.set $a (i32.add (local.get $g) (local.get $i)))
            (local.set $x (v128.load (local.get $a)))
            (local.set $s01 (f64x2.promote_low_f32x4 (local.get $x)))
            (local.set $s23 (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $x) (local.get $x))))
            (local.set $x (v128.load offset=16 (local.get $a)))
            (local.set $s45 (f64x2.promote_low_f32x4 (local.get $x)))
            (local.set $s67 (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $x) (local.get $x))))
            (local.set $acc01 (f64x2.add (local.get $acc01) (f64x2.mul (local.get $s01) (local.get $s01))))
            (local.set $acc23 (f64x2.add (local.get $acc23) (f64x2.mul (local.get $s23) (local.get $s23))))
            (local.set $acc45 (f64x2.add (local.get $acc45) (f64x2.mul (local.get $s45) (local.get $s45))))
            (local.set $acc67 (f64x2.add (local.get $acc67) (f64x2.mul (local.get $s67) (local.get $s67))))
            (local.set $i (i32.add (local.get $i) (i32.const 32)))
            (br $vec0)))))
    ;; one slot: the general loop without the slot loop
    (if (i32.eq (local.get $nslots) (i32.const 1))
      (then
        (block $v1done
          (loop $vec1
            (br_if $v1done (i32.ge_u (local.get $i) (local.get $vend)))
            (local.set $a (i32.add (local.get $g) (local.get $i)))
            (local.set $s01 (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $a))))
            (local.set $s23 (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $a))))
            (local.set $s45 (f64x2.promote_low_f32x4 (v128.load64_zero offset=16 (local.get $a))))
            (local.set $s67 (f64x2.promote_low_f32x4 (v128.load64_zero offset=24 (local.get $a))))
            (local.set $s01 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s01) (local.get $inv)) (local.get $lo)) (local.get $hi)))
            (local.set $s23 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s23) (local.get $inv)) (local.get $lo)) (local.get $hi)))
            (local.set $s45 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s45) (local.get $inv)) (local.get $lo)) (local.get $hi)))
            (local.set $s67 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s67) (local.get $inv)) (local.get $lo)) (local.get $hi)))
            (local.set $acc01 (f64x2.add (local.get $acc01) (f64x2.mul (local.get $s01) (local.get $s01))))
            (local.set $acc23 (f64x2.add (local.get $acc23) (f64x2.mul (local.get $s23) (local.get $s23))))
            (local.set $acc45 (f64x2.add (local.get $acc45) (f64x2.mul (local.get $s45) (local.get $s45))))
            (local.set $acc67 (f64x2.add (local.get $acc67) (f64x2.mul (local.get $s67) (local.get $s67))))
            (local.set $i (i32.add (local.get $i) (i32.const 32)))
            (br $vec1)))))
    (block $vdone
      (loop $vec
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $vend)))
        (local.set $a (i32.add (local.get $g) (local.get $i)))
        (local.set $s01 (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $a))))
        (local.set $s23 (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $a))))
        (local.set $s45 (f64x2.promote_low_f32x4 (v128.load64_zero offset=16 (local.get $a))))
        (local.set $s67 (f64x2.promote_low_f32x4 (v128.load64_zero offset=24 (local.get $a))))
        (local.set $b (local.get $a))
        (local.set $r (i32.const 1))
        (block $sdone
          (loop $slots
            (br_if $sdone (i32.ge_u (local.get $r) (local.get $nslots)))
            (local.set $b (i32.add (local.get $b) (local.get $gstride)))
            (local.set $s01 (f64x2.add (local.get $s01)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 (local.get $b)))))
            (local.set $s23 (f64x2.add (local.get $s23)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $b)))))
            (local.set $s45 (f64x2.add (local.get $s45)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=16 (local.get $b)))))
            (local.set $s67 (f64x2.add (local.get $s67)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=24 (local.get $b)))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $slots)))
        (local.set $s01 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s01) (local.get $inv)) (local.get $lo)) (local.get $hi)))
        (local.set $s23 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s23) (local.get $inv)) (local.get $lo)) (local.get $hi)))
        (local.set $s45 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s45) (local.get $inv)) (local.get $lo)) (local.get $hi)))
        (local.set $s67 (f64x2.pmin (f64x2.pmax (f64x2.mul (local.get $s67) (local.get $inv)) (local.get $lo)) (local.get $hi)))
        (local.set $acc01 (f64x2.add (local.get $acc01) (f64x2.mul (local.get $s01) (local.get $s01))))
        (local.set $acc23 (f64x2.add (local.get $acc23) (f64x2.mul (local.get $s23) (local.get $s23))))
        (local.set $acc45 (f64x2.add (local.get $acc45) (f64x2.mul (local.get $s45) (local.get $s45))))
        (local.set $acc67 (f64x2.add (local.get $acc67) (f64x2.mul (local.get $s67) (local.get $s67))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $vec)))
    (local.set $l0 (f64x2.extract_lane 0 (local.get $acc01)))
    (local.set $l1 (f64x2.extract_lane 1 (local.get $acc01)))
    (local.set $l2 (f64x2.extract_lane 0 (local.get $acc23)))
    (local.set $l3 (f64x2.extract_lane 1 (local.get $acc23)))
    (local.set $l4 (f64x2.extract_lane 0 (local.get $acc45)))
    (local.set $l5 (f64x2.extract_lane 1 (local.get $acc45)))
    (local.set $l6 (f64x2.extract_lane 0 (local.get $acc67)))
    (local.set $l7 (f64x2.extract_lane 1 (local.get $acc67)))
    ;; tail: at most 7 elements, in relative lanes 0 … 6
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l0 (f64.add (local.get $l0) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l1 (f64.add (local.get $l1) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l2 (f64.add (local.get $l2) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l3 (f64.add (local.get $l3) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l4 (f64.add (local.get $l4) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l5 (f64.add (local.get $l5) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (if (i32.lt_u (local.get $i) (local.get $stop))
      (then
        (local.set $l6 (f64.add (local.get $l6) (call $clampSq64
          (f64.mul (call $slotSum64 (local.get $g) (local.get $gstride) (local.get $nslots) (local.get $i)) (local.get $invSlots))
          (local.get $clip))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))))
    (global.set $lane1 (local.get $l1))
    (global.set $lane2 (local.get $l2))
    (global.set $lane3 (local.get $l3))
    (global.set $lane4 (local.get $l4))
    (global.set $lane5 (local.get $l5))
    (global.set $lane6 (local.get $l6))
    (global.set $lane7 (local.get $l7))
    (local.get $l0))

  ;; One element in scalar float32, the same operations in the same order as the vector body below.
  (func $updateOne
    (param $p i32) (param $m i32) (param $v i32) (param $vmax i32) (param $g i32) (param $gstride i32)
    (param $nslots i32) (param $i i32)
    (param $b1 f32) (param $b2 f32) (param $omb1 f32) (param $omb2 f32) (param $eps f32) (param $sqrtScale f32)
    (param $invSlots f32) (param $clip f32) (param $clipScale f32)
    (param $decayPre f32) (param $stepSize f32) (param $decayPost f32) (param $l2 f32) (param $cautious i32)
    (local $sum f32) (local $r i32) (local $a i32) (local $pv f32) (local $gv f32) (local $mv f32) (local $vv f32)
    (local $vm f32) (local $nclip f32)
    (local.set $a (i32.add (local.get $g) (local.get $i)))
    (local.set $sum (f32.load (local.get $a)))
    (local.set $r (i32.const 1))
    (block $done
      (loop $slots
        (br_if $done (i32.ge_u (local.get $r) (local.get $nslots)))
        (local.set $a (i32.add (local.get $a) (local.get $gstride)))
        (local.set $sum (f32.add (local.get $sum) (f32.load (local.get $a))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $slots)))
    (local.set $pv (f32.load (i32.add (local.get $p) (local.get $i))))
    (local.set $gv (f32.mul (local.get $sum) (local.get $invSlots)))
    (local.set $nclip (f32.neg (local.get $clip)))
    (local.set $gv (select (local.get $nclip) (local.get $gv) (f32.lt (local.get $gv) (local.get $nclip))))
    (local.set $gv (select (local.get $clip) (local.get $gv) (f32.lt (local.get $clip) (local.get $gv))))
    (local.set $gv (f32.add (f32.mul (local.get $gv) (local.get $clipScale)) (f32.mul (local.get $l2) (local.get $pv))))
    (local.set $mv (f32.add (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (local.get $i))))
                            (f32.mul (local.get $omb1) (local.get $gv))))
    (local.set $vv (f32.add (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (local.get $i))))
                            (f32.mul (f32.mul (local.get $omb2) (local.get $gv)) (local.get $gv))))
    (f32.store (i32.add (local.get $m) (local.get $i)) (local.get $mv))
    (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $vv))
    (if (i32.ne (local.get $vmax) (i32.const -1))
      (then
        (local.set $vm (f32.load (i32.add (local.get $vmax) (local.get $i))))
        (local.set $vv (select (local.get $vm) (local.get $vv) (f32.lt (local.get $vv) (local.get $vm))))
        (f32.store (i32.add (local.get $vmax) (local.get $i)) (local.get $vv))))
    ;; cautious: no decay where m'·p < 0 (the parameters are locals, so they can be overwritten)
    (if (local.get $cautious)
      (then
        (if (i32.eqz (i32.or
              (i32.and (f32.ge (local.get $mv) (f32.const 0)) (f32.ge (local.get $pv) (f32.const 0)))
              (i32.and (f32.le (local.get $mv) (f32.const 0)) (f32.le (local.get $pv) (f32.const 0)))))
          (then
            (local.set $decayPre (f32.const 1))
            (local.set $decayPost (f32.const 1))))))
    (f32.store (i32.add (local.get $p) (local.get $i))
      (f32.mul
        (f32.sub
          (f32.mul (local.get $pv) (local.get $decayPre))
          (f32.div (f32.mul (local.get $stepSize) (local.get $mv))
                   (f32.add (f32.mul (f32.sqrt (local.get $vv)) (local.get $sqrtScale)) (local.get $eps))))
        (local.get $decayPost))))

  ;; The common case, specialised: no value clipping (clip = +∞), no norm clipping this step (clipScale = 1),
  ;; no L2 term (l2 = 0), no decay after the update (decayPost = 1), no AMSGrad. Each dropped operation is
  ;; an exact identity for finite inputs (x·1 = x, clamp to ±∞ = x, x + 0·p = x), so this gives the bits
  ;; `update` gives (short of the sign of a zero moment); with 8 broadcast scalars instead of 14 everything
  ;; stays in registers. $R1: one gradient slot (then invSlots = 1, also dropped); $R2: two, (g0 + g1)·½.
  ;; $i and $stop are byte offsets with $i 16-byte aligned and ($stop − $i) a multiple of 16; the caller
  ;; (update) runs the scalar prologue and tail.
  (func $simpleR1
    (param $p i32) (param $m i32) (param $v i32) (param $g i32) (param $i i32) (param $stop i32)
    (param $b1s f32) (param $b2s f32) (param $omb1s f32) (param $omb2s f32) (param $epss f32) (param $sqrtScales f32)
    (param $decayPres f32) (param $stepSizes f32)
    (local $b1 v128) (local $b2 v128) (local $omb1 v128) (local $omb2 v128) (local $eps v128) (local $sqrtScale v128)
    (local $decayPre v128) (local $stepSize v128) (local $gv v128) (local $mv v128) (local $vv v128)
    (local.set $b1 (f32x4.splat (local.get $b1s)))
    (local.set $b2 (f32x4.splat (local.get $b2s)))
    (local.set $omb1 (f32x4.splat (local.get $omb1s)))
    (local.set $omb2 (f32x4.splat (local.get $omb2s)))
    (local.set $eps (f32x4.splat (local.get $epss)))
    (local.set $sqrtScale (f32x4.splat (local.get $sqrtScales)))
    (local.set $decayPre (f32x4.splat (local.get $decayPres)))
    (local.set $stepSize (f32x4.splat (local.get $stepSizes)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $stop)))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $mv (f32x4.add (f32x4.mul (local.get $b1) (v128.load (i32.add (local.get $m) (local.get $i))))
                                  (f32x4.mul (local.get $omb1) (local.get $gv))))
        (local.set $vv (f32x4.add (f32x4.mul (local.get $b2) (v128.load (i32.add (local.get $v) (local.get $i))))
                                  (f32x4.mul (f32x4.mul (local.get $omb2) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.sub
            (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $i))) (local.get $decayPre))
            (f32x4.div (f32x4.mul (local.get $stepSize) (local.get $mv))
                       (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vv)) (local.get $sqrtScale)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec))))

  (func $simpleR2
    (param $p i32) (param $m i32) (param $v i32) (param $g i32) (param $gstride i32) (param $i i32) (param $stop i32)
    (param $b1s f32) (param $b2s f32) (param $omb1s f32) (param $omb2s f32) (param $epss f32) (param $sqrtScales f32)
    (param $decayPres f32) (param $stepSizes f32) (param $invSlotss f32)
    (local $b1 v128) (local $b2 v128) (local $omb1 v128) (local $omb2 v128) (local $eps v128) (local $sqrtScale v128)
    (local $decayPre v128) (local $stepSize v128) (local $invSlots v128) (local $gv v128) (local $mv v128) (local $vv v128)
    (local $g1 i32)
    (local.set $b1 (f32x4.splat (local.get $b1s)))
    (local.set $b2 (f32x4.splat (local.get $b2s)))
    (local.set $omb1 (f32x4.splat (local.get $omb1s)))
    (local.set $omb2 (f32x4.splat (local.get $omb2s)))
    (local.set $eps (f32x4.splat (local.get $epss)))
    (local.set $sqrtScale (f32x4.splat (local.get $sqrtScales)))
    (local.set $decayPre (f32x4.splat (local.get $decayPres)))
    (local.set $stepSize (f32x4.splat (local.get $stepSizes)))
    (local.set $invSlots (f32x4.splat (local.get $invSlotss)))
    (local.set $g1 (i32.add (local.get $g) (local.get $gstride)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $stop)))
        (local.set $gv (f32x4.mul
          (f32x4.add (v128.load (i32.add (local.get $g) (local.get $i))) (v128.load (i32.add (local.get $g1) (local.get $i))))
          (local.get $invSlots)))
        (local.set $mv (f32x4.add (f32x4.mul (local.get $b1) (v128.load (i32.add (local.get $m) (local.get $i))))
                                  (f32x4.mul (local.get $omb1) (local.get $gv))))
        (local.set $vv (f32x4.add (f32x4.mul (local.get $b2) (v128.load (i32.add (local.get $v) (local.get $i))))
                                  (f32x4.mul (f32x4.mul (local.get $omb2) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.sub
            (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $i))) (local.get $decayPre))
            (f32x4.div (f32x4.mul (local.get $stepSize) (local.get $mv))
                       (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vv)) (local.get $sqrtScale)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec))))

  ;; The general vector body with cautious weight decay: the loop of `update` below, plus the sign mask
  ;; (four compares and three bit operations per 4 elements) choosing between the decay factors and 1 with
  ;; v128.bitselect. A function of its own so that the loops without the mask stay as they are. Same operand
  ;; order as $updateOne, so prologue, body and tail give the same bits.
  (func $cautiousBody
    (param $p i32) (param $m i32) (param $v i32) (param $vmax i32) (param $g i32) (param $gstride i32)
    (param $nslots i32) (param $i i32) (param $stop i32)
    (param $b1s f32) (param $b2s f32) (param $omb1s f32) (param $omb2s f32) (param $epss f32) (param $sqrtScales f32)
    (param $invSlotss f32) (param $clips f32) (param $clipScales f32)
    (param $decayPres f32) (param $stepSizes f32) (param $decayPosts f32) (param $l2s f32)
    (local $r i32) (local $a i32)
    (local $b1 v128) (local $b2 v128) (local $omb1 v128) (local $omb2 v128) (local $eps v128) (local $sqrtScale v128)
    (local $invSlots v128) (local $clip v128) (local $nclip v128) (local $clipScale v128)
    (local $decayPre v128) (local $stepSize v128) (local $decayPost v128) (local $l2 v128)
    (local $zero v128) (local $one v128) (local $mask v128)
    (local $sum v128) (local $pv v128) (local $gv v128) (local $mv v128) (local $vv v128)
    (local.set $b1 (f32x4.splat (local.get $b1s)))
    (local.set $b2 (f32x4.splat (local.get $b2s)))
    (local.set $omb1 (f32x4.splat (local.get $omb1s)))
    (local.set $omb2 (f32x4.splat (local.get $omb2s)))
    (local.set $eps (f32x4.splat (local.get $epss)))
    (local.set $sqrtScale (f32x4.splat (local.get $sqrtScales)))
    (local.set $invSlots (f32x4.splat (local.get $invSlotss)))
    (local.set $clip (f32x4.splat (local.get $clips)))
    (local.set $nclip (f32x4.neg (local.get $clip)))
    (local.set $clipScale (f32x4.splat (local.get $clipScales)))
    (local.set $decayPre (f32x4.splat (local.get $decayPres)))
    (local.set $stepSize (f32x4.splat (local.get $stepSizes)))
    (local.set $decayPost (f32x4.splat (local.get $decayPosts)))
    (local.set $l2 (f32x4.splat (local.get $l2s)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $one (f32x4.splat (f32.const 1)))
    (block $vdone
      (loop $vec
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $stop)))
        (local.set $a (i32.add (local.get $g) (local.get $i)))
        (local.set $sum (v128.load (local.get $a)))
        (local.set $r (i32.const 1))
        (block $sdone
          (loop $slots
            (br_if $sdone (i32.ge_u (local.get $r) (local.get $nslots)))
            (local.set $a (i32.add (local.get $a) (local.get $gstride)))
            (local.set $sum (f32x4.add (local.get $sum) (v128.load (local.get $a))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $slots)))
        (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
        (local.set $gv (f32x4.pmin
          (f32x4.pmax (f32x4.mul (local.get $sum) (local.get $invSlots)) (local.get $nclip))
          (local.get $clip)))
        (local.set $gv (f32x4.add (f32x4.mul (local.get $gv) (local.get $clipScale)) (f32x4.mul (local.get $l2) (local.get $pv))))
        (local.set $mv (f32x4.add (f32x4.mul (local.get $b1) (v128.load (i32.add (local.get $m) (local.get $i))))
                                  (f32x4.mul (local.get $omb1) (local.get $gv))))
        (local.set $vv (f32x4.add (f32x4.mul (local.get $b2) (v128.load (i32.add (local.get $v) (local.get $i))))
                                  (f32x4.mul (f32x4.mul (local.get $omb2) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (if (i32.ne (local.get $vmax) (i32.const -1))
          (then
            (local.set $vv (f32x4.pmax (local.get $vv) (v128.load (i32.add (local.get $vmax) (local.get $i)))))
            (v128.store (i32.add (local.get $vmax) (local.get $i)) (local.get $vv))))
        (local.set $mask (v128.or
          (v128.and (f32x4.ge (local.get $mv) (local.get $zero)) (f32x4.ge (local.get $pv) (local.get $zero)))
          (v128.and (f32x4.le (local.get $mv) (local.get $zero)) (f32x4.le (local.get $pv) (local.get $zero)))))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.mul
            (f32x4.sub
              (f32x4.mul (local.get $pv) (v128.bitselect (local.get $decayPre) (local.get $one) (local.get $mask)))
              (f32x4.div (f32x4.mul (local.get $stepSize) (local.get $mv))
                         (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vv)) (local.get $sqrtScale)) (local.get $eps))))
            (v128.bitselect (local.get $decayPost) (local.get $one) (local.get $mask))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec))))

  ;; The AdamW update of elements [start, end). $p, $m, $v, $vmax, $g are byte addresses of the regions
  ;; (element 0 of the shard); $vmax is −1 without AMSGrad; slot r is at $g + r·$gstride. $simple = 1 when
  ;; clip = +∞, clipScale = 1, l2 = 0, decayPost = 1, no AMSGrad and no cautious decay (the JS side checks
  ;; the scalars). $cautious = 1 masks the decay factors by the signs of m' and p (see $cautiousBody).
  ;; Scalar prologue up to a 16-byte boundary, f32x4 body, scalar tail.
  (func (export "update")
    (param $p i32) (param $m i32) (param $v i32) (param $vmax i32) (param $g i32) (param $gstride i32)
    (param $nslots i32) (param $start i32) (param $end i32)
    (param $b1d f64) (param $b2d f64) (param $omb1d f64) (param $omb2d f64) (param $epsd f64) (param $sqrtScaled f64)
    (param $invSlotsd f64) (param $clipd f64) (param $clipScaled f64)
    (param $decayPred f64) (param $stepSized f64) (param $decayPostd f64) (param $l2d f64)
    (param $simple i32) (param $cautious i32)
    (local $i i32) (local $stop i32) (local $vend i32) (local $r i32) (local $a i32)
    (local $b1s f32) (local $b2s f32) (local $omb1s f32) (local $omb2s f32) (local $epss f32) (local $sqrtScales f32)
    (local $invSlotss f32) (local $clips f32) (local $clipScales f32)
    (local $decayPres f32) (local $stepSizes f32) (local $decayPosts f32) (local $l2s f32)
    (local $b1 v128) (local $b2 v128) (local $omb1 v128) (local $omb2 v128) (local $eps v128) (local $sqrtScale v128)
    (local $invSlots v128) (local $clip v128) (local $nclip v128) (local $clipScale v128)
    (local $decayPre v128) (local $stepSize v128) (local $decayPost v128) (local $l2 v128)
    (local $sum v128) (local $pv v128) (local $gv v128) (local $mv v128) (local $vv v128)
    (local.set $b1s (f32.demote_f64 (local.get $b1d)))
    (local.set $b2s (f32.demote_f64 (local.get $b2d)))
    (local.set $omb1s (f32.demote_f64 (local.get $omb1d)))
    (local.set $omb2s (f32.demote_f64 (local.get $omb2d)))
    (local.set $epss (f32.demote_f64 (local.get $epsd)))
    (local.set $sqrtScales (f32.demote_f64 (local.get $sqrtScaled)))
    (local.set $invSlotss (f32.demote_f64 (local.get $invSlotsd)))
    (local.set $clips (f32.demote_f64 (local.get $clipd)))
    (local.set $clipScales (f32.demote_f64 (local.get $clipScaled)))
    (local.set $decayPres (f32.demote_f64 (local.get $decayPred)))
    (local.set $stepSizes (f32.demote_f64 (local.get $stepSized)))
    (local.set $decayPosts (f32.demote_f64 (local.get $decayPostd)))
    (local.set $l2s (f32.demote_f64 (local.get $l2d)))
    (local.set $b1 (f32x4.splat (local.get $b1s)))
    (local.set $b2 (f32x4.splat (local.get $b2s)))
    (local.set $omb1 (f32x4.splat (local.get $omb1s)))
    (local.set $omb2 (f32x4.splat (local.get $omb2s)))
    (local.set $eps (f32x4.splat (local.get $epss)))
    (local.set $sqrtScale (f32x4.splat (local.get $sqrtScales)))
    (local.set $invSlots (f32x4.splat (local.get $invSlotss)))
    (local.set $clip (f32x4.splat (local.get $clips)))
    (local.set $nclip (f32x4.neg (local.get $clip)))
    (local.set $clipScale (f32x4.splat (local.get $clipScales)))
    (local.set $decayPre (f32x4.splat (local.get $decayPres)))
    (local.set $stepSize (f32x4.splat (local.get $stepSizes)))
    (local.set $decayPost (f32x4.splat (local.get $decayPosts)))
    (local.set $l2 (f32x4.splat (local.get $l2s)))

    (local.set $i (i32.shl (local.get $start) (i32.const 2)))
    (local.set $stop (i32.shl (local.get $end) (i32.const 2)))
    ;; prologue: scalar until the byte offset is a multiple of 16 (regions start on 64-byte boundaries)
    (block $pdone
      (loop $pro
        (br_if $pdone (i32.ge_u (local.get $i) (local.get $stop)))
        (br_if $pdone (i32.eqz (i32.and (local.get $i) (i32.const 15))))
        (call $updateOne (local.get $p) (local.get $m) (local.get $v) (local.get $vmax) (local.get $g)
          (local.get $gstride) (local.get $nslots) (local.get $i)
          (local.get $b1s) (local.get $b2s) (local.get $omb1s) (local.get $omb2s) (local.get $epss)
          (local.get $sqrtScales) (local.get $invSlotss) (local.get $clips) (local.get $clipScales)
          (local.get $decayPres) (local.get $stepSizes) (local.get $decayPosts) (local.get $l2s) (local.get $cautious))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $pro)))
    (local.set $vend (select
      (i32.add (local.get $i) (i32.and (i32.sub (local.get $stop) (local.get $i)) (i32.const -16)))
      (local.get $i)
      (i32.lt_u (local.get $i) (local.get $stop))))
    ;; body: 4 elements per iteration; the specialised loops when the caller says the knobs allow it
    (if (local.get $cautious)
      (then
        (call $cautiousBody (local.get $p) (local.get $m) (local.get $v) (local.get $vmax) (local.get $g)
          (local.get $gstride) (local.get $nslots) (local.get $i) (local.get $vend)
          (local.get $b1s) (local.get $b2s) (local.get $omb1s) (local.get $omb2s) (local.get $epss)
          (local.get $sqrtScales) (local.get $invSlotss) (local.get $clips) (local.get $clipScales)
          (local.get $decayPres) (local.get $stepSizes) (local.get $decayPosts) (local.get $l2s))
        (local.set $i (local.get $vend))))
    (if (i32.and (local.get $simple) (i32.eq (local.get $nslots) (i32.const 1)))
      (then
        (call $simpleR1 (local.get $p) (local.get $m) (local.get $v) (local.get $g) (local.get $i) (local.get $vend)
          (local.get $b1s) (local.get $b2s) (local.get $omb1s) (local.get $omb2s) (local.get $epss) (local.get $sqrtScales)
          (local.get $decayPres) (local.get $stepSizes))
        (local.set $i (local.get $vend))))
    (if (i32.and (local.get $simple) (i32.eq (local.get $nslots) (i32.const 2)))
      (then
        (call $simpleR2 (local.get $p) (local.get $m) (local.get $v) (local.get $g) (local.get $gstride) (local.get $i)
          (local.get $vend) (local.get $b1s) (local.get $b2s) (local.get $omb1s) (local.get $omb2s) (local.get $epss)
          (local.get $sqrtScales) (local.get $decayPres) (local.get $stepSizes) (local.get $invSlotss))
        (local.set $i (local.get $vend))))
    (block $vdone
      (loop $vec
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $vend)))
        (local.set $a (i32.add (local.get $g) (local.get $i)))
        (local.set $sum (v128.load (local.get $a)))
        (local.set $r (i32.const 1))
        (block $sdone
          (loop $slots
            (br_if $sdone (i32.ge_u (local.get $r) (local.get $nslots)))
            (local.set $a (i32.add (local.get $a) (local.get $gstride)))
            (local.set $sum (f32x4.add (local.get $sum) (v128.load (local.get $a))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $slots)))
        (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
        (local.set $gv (f32x4.pmin
          (f32x4.pmax (f32x4.mul (local.get $sum) (local.get $invSlots)) (local.get $nclip))
          (local.get $clip)))
        (local.set $gv (f32x4.add (f32x4.mul (local.get $gv) (local.get $clipScale)) (f32x4.mul (local.get $l2) (local.get $pv))))
        (local.set $mv (f32x4.add (f32x4.mul (local.get $b1) (v128.load (i32.add (local.get $m) (local.get $i))))
                                  (f32x4.mul (local.get $omb1) (local.get $gv))))
        (local.set $vv (f32x4.add (f32x4.mul (local.get $b2) (v128.load (i32.add (local.get $v) (local.get $i))))
                                  (f32x4.mul (f32x4.mul (local.get $omb2) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (if (i32.ne (local.get $vmax) (i32.const -1))
          (then
            (local.set $vv (f32x4.pmax (local.get $vv) (v128.load (i32.add (local.get $vmax) (local.get $i)))))
            (v128.store (i32.add (local.get $vmax) (local.get $i)) (local.get $vv))))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.mul
            (f32x4.sub
              (f32x4.mul (local.get $pv) (local.get $decayPre))
              (f32x4.div (f32x4.mul (local.get $stepSize) (local.get $mv))
                         (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vv)) (local.get $sqrtScale)) (local.get $eps))))
            (local.get $decayPost)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    ;; tail: the last 0..3 elements
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $stop)))
        (call $updateOne (local.get $p) (local.get $m) (local.get $v) (local.get $vmax) (local.get $g)
          (local.get $gstride) (local.get $nslots) (local.get $i)
          (local.get $b1s) (local.get $b2s) (local.get $omb1s) (local.get $omb2s) (local.get $epss)
          (local.get $sqrtScales) (local.get $invSlotss) (local.get $clips) (local.get $clipScales)
          (local.get $decayPres) (local.get $stepSizes) (local.get $decayPosts) (local.get $l2s) (local.get $cautious))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))
  ;; 1 when every float32 at byte addresses [$a, $b) is finite with |x| <= $bound, else 0: the check a
  ;; gradient gets while it is written into its slot (adamw-js.ts, slotWithinBound). f32x4.max and f32.max
  ;; propagate NaN, and `max <= bound` is false for NaN and ±Inf, so one comparison at the end decides.
  ;; Eight floats per iteration in two accumulators (each max waits for the previous one).
  (func (export "withinBound") (param $a i32) (param $b i32) (param $bound f32) (result i32)
    (local $m0 v128) (local $m1 v128) (local $vend i32) (local $s f32)
    (local.set $vend (i32.add (local.get $a) (i32.and (i32.sub (local.get $b) (local.get $a)) (i32.const -32))))
    (block $vdone
      (loop $vec
        (br_if $vdone (i32.ge_u (local.get $a) (local.get $vend)))
        (local.set $m0 (f32x4.max (local.get $m0) (f32x4.abs (v128.load (local.get $a)))))
        (local.set $m1 (f32x4.max (local.get $m1) (f32x4.abs (v128.load offset=16 (local.get $a)))))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (br $vec)))
    (local.set $m0 (f32x4.max (local.get $m0) (local.get $m1)))
    (local.set $s (f32.max (f32.max (f32x4.extract_lane 0 (local.get $m0)) (f32x4.extract_lane 1 (local.get $m0)))
                           (f32.max (f32x4.extract_lane 2 (local.get $m0)) (f32x4.extract_lane 3 (local.get $m0)))))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $a) (local.get $b)))
        (local.set $s (f32.max (local.get $s) (f32.abs (f32.load (local.get $a)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (br $tail)))
    (f32.le (local.get $s) (local.get $bound))))
