;; Reductions, tanh and the row gather for our tfjs kernels (src/tfjs/ops.ts binds them to the tfjs wasm
;; backend's memory, which this module imports). Each loop's order depends on the shapes only, so results
;; are the same bits on every thread. Addresses are byte offsets; counts are elements.
(module
  (import "env" "memory" (memory 0))

  ;; out[j] = (Σ_i x[i·cols + j]) / div for j < cols: rows are added into out in order (i ascending), so every
  ;; column is a plain left-to-right sum, read once, streaming.
  (func (export "sumRows") (param $x i32) (param $rows i32) (param $cols i32) (param $out i32) (param $div f32)
    (local $i i32) (local $j i32) (local $p i32) (local $o i32) (local $vcols i32)
    (memory.fill (local.get $out) (i32.const 0) (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $vcols (i32.and (local.get $cols) (i32.const -4)))
    (local.set $p (local.get $x))
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $j (i32.const 0))
      (local.set $o (local.get $out))
      (block $vd (loop $vl
        (br_if $vd (i32.ge_u (local.get $j) (local.get $vcols)))
        (v128.store (local.get $o) (f32x4.add (v128.load (local.get $o)) (v128.load (local.get $p))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vl)))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $j) (local.get $cols)))
        (f32.store (local.get $o) (f32.add (f32.load (local.get $o)) (f32.load (local.get $p))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $sl)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rl)))
    (if (f32.ne (local.get $div) (f32.const 1)) (then (call $divide (local.get $out) (local.get $cols) (local.get $div)))))

  ;; out[i] = (Σ_j x[i·cols + j]) / div for i < rows. Sixteen running sums per row (four f32x4, element j goes
  ;; to sum j mod 16), then a tail of whole vectors into the first, combined as ((s0 + s1) + (s2 + s3)) and
  ;; lanes ((l0 + l1) + (l2 + l3)), then the last cols mod 4 elements in order.
  (func (export "sumCols") (param $x i32) (param $rows i32) (param $cols i32) (param $out i32) (param $div f32)
    (local $i i32) (local $j i32) (local $p i32) (local $s f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $p (local.get $x))
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $bd (loop $bl
        (br_if $bd (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $cols)))
        (local.set $a0 (f32x4.add (local.get $a0) (v128.load offset=0 (local.get $p))))
        (local.set $a1 (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $p))))
        (local.set $a2 (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $p))))
        (local.set $a3 (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $bl)))
      (block $vd (loop $vl
        (br_if $vd (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $cols)))
        (local.set $a0 (f32x4.add (local.get $a0) (v128.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vl)))
      (local.set $a0 (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3))))
      (local.set $s (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
        (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0)))))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $s (f32.add (local.get $s) (f32.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $sl)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (f32.div (local.get $s) (local.get $div)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rl))))

  ;; x[0..n) /= div, in place.
  (func $divide (param $x i32) (param $n i32) (param $div f32)
    (local $end i32) (local $vend i32) (local $d v128)
    (local.set $d (f32x4.splat (local.get $div)))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $vend (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $vd (loop $vl
      (br_if $vd (i32.ge_u (local.get $x) (local.get $vend)))
      (v128.store (local.get $x) (f32x4.div (v128.load (local.get $x)) (local.get $d)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (br $vl)))
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u (local.get $x) (local.get $end)))
      (f32.store (local.get $x) (f32.div (f32.load (local.get $x)) (local.get $div)))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (br $sl))))

  ;; tanh of four lanes, within 3 ulps (float32, no fused operations, so the same bits everywhere):
  ;;   |x| < 0.55:  |x| + |x|·s·P(s), s = x², P the Taylor series of (tanh(x) − x)/x³ through x¹⁴ (truncation
  ;;                < 0.1 ulp at 0.55; the correction is under a tenth of the result, so its rounding barely shows);
  ;;   |x| ≥ 0.55:  (1 − e)/(1 + e) with e = exp(−2|x|) ≤ 1/3: e from 2ⁿ·exp(r), n = nearest(−2|x|·log₂e),
  ;;                r reduced with ln 2 split in two (Cody–Waite) and exp(r) as its degree-7 Taylor polynomial
  ;;                (≤ 1.5 ulps); e's error reaches t scaled by 2e/(1 − e²) ≤ 0.75, plus three roundings.
  ;; |x| is clamped at 9.1, where the result is 1.0f already; the sign is copied back from x (tanh(−0) = −0);
  ;; NaN stays NaN.
  (func $tanh4 (param $x v128) (result v128)
    (local $ax v128) (local $s v128) (local $p v128) (local $y v128) (local $n v128) (local $r v128) (local $e v128)
    (local.set $ax (f32x4.min (f32x4.abs (local.get $x)) (v128.const f32x4 9.1 9.1 9.1 9.1)))
    (local.set $s (f32x4.mul (local.get $ax) (local.get $ax)))
    (local.set $p (v128.const f32x4 0x1.355824p-11 0x1.355824p-11 0x1.355824p-11 0x1.355824p-11))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 -0x1.7da364p-10 -0x1.7da364p-10 -0x1.7da364p-10 -0x1.7da364p-10)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 0x1.d6d3d0p-9 0x1.d6d3d0p-9 0x1.d6d3d0p-9 0x1.d6d3d0p-9)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 -0x1.226e36p-7 -0x1.226e36p-7 -0x1.226e36p-7 -0x1.226e36p-7)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 0x1.664f48p-6 0x1.664f48p-6 0x1.664f48p-6 0x1.664f48p-6)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 -0x1.ba1ba2p-5 -0x1.ba1ba2p-5 -0x1.ba1ba2p-5 -0x1.ba1ba2p-5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 0x1.111112p-3 0x1.111112p-3 0x1.111112p-3 0x1.111112p-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $s)) (v128.const f32x4 -0x1.555556p-2 -0x1.555556p-2 -0x1.555556p-2 -0x1.555556p-2)))
    (local.set $p (f32x4.add (local.get $ax) (f32x4.mul (local.get $ax) (f32x4.mul (local.get $s) (local.get $p)))))
    ;; e = exp(y), y = −2|x| (exact)
    (local.set $y (f32x4.mul (local.get $ax) (v128.const f32x4 -2 -2 -2 -2)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $y) (v128.const f32x4 0x1.715476p+0 0x1.715476p+0 0x1.715476p+0 0x1.715476p+0))))
    (local.set $r (f32x4.sub
      (f32x4.sub (local.get $y) (f32x4.mul (local.get $n) (v128.const f32x4 0x1.62e4p-1 0x1.62e4p-1 0x1.62e4p-1 0x1.62e4p-1)))
      (f32x4.mul (local.get $n) (v128.const f32x4 0x1.7f7d1cp-20 0x1.7f7d1cp-20 0x1.7f7d1cp-20 0x1.7f7d1cp-20))))
    (local.set $e (v128.const f32x4 0x1.a01a02p-13 0x1.a01a02p-13 0x1.a01a02p-13 0x1.a01a02p-13))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 0x1.6c16c2p-10 0x1.6c16c2p-10 0x1.6c16c2p-10 0x1.6c16c2p-10)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 0x1.111112p-7 0x1.111112p-7 0x1.111112p-7 0x1.111112p-7)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 0x1.555556p-5 0x1.555556p-5 0x1.555556p-5 0x1.555556p-5)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 0x1.555556p-3 0x1.555556p-3 0x1.555556p-3 0x1.555556p-3)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    ;; · 2ⁿ through the exponent bits (n ∈ [−27, −1]: no underflow)
    (local.set $e (f32x4.mul (local.get $e)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))
    (local.set $e (f32x4.div
      (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $e))
      (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $e))))
    (v128.or
      (v128.bitselect (local.get $p) (local.get $e) (f32x4.lt (local.get $ax) (v128.const f32x4 0.55 0.55 0.55 0.55)))
      (v128.and (local.get $x) (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000))))

  ;; out[i] = tanh(x[i]) for i < n (out may be x). The last n mod 4 go through one padded vector.
  (func (export "tanh") (param $x i32) (param $out i32) (param $n i32)
    (local $vend i32) (local $rem i32) (local $v v128)
    (local.set $vend (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $vd (loop $vl
      (br_if $vd (i32.ge_u (local.get $x) (local.get $vend)))
      (v128.store (local.get $out) (call $tanh4 (v128.load (local.get $x))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $vl)))
    (local.set $rem (i32.and (local.get $n) (i32.const 3)))
    (if (i32.eqz (local.get $rem)) (then (return)))
    (local.set $v (f32x4.replace_lane 0 (v128.const i32x4 0 0 0 0) (f32.load (local.get $x))))
    (if (i32.gt_u (local.get $rem) (i32.const 1)) (then (local.set $v (f32x4.replace_lane 1 (local.get $v) (f32.load offset=4 (local.get $x))))))
    (if (i32.gt_u (local.get $rem) (i32.const 2)) (then (local.set $v (f32x4.replace_lane 2 (local.get $v) (f32.load offset=8 (local.get $x))))))
    (local.set $v (call $tanh4 (local.get $v)))
    (f32.store (local.get $out) (f32x4.extract_lane 0 (local.get $v)))
    (if (i32.gt_u (local.get $rem) (i32.const 1)) (then (f32.store offset=4 (local.get $out) (f32x4.extract_lane 1 (local.get $v)))))
    (if (i32.gt_u (local.get $rem) (i32.const 2)) (then (f32.store offset=8 (local.get $out) (f32x4.extract_lane 2 (local.get $v))))))

  ;; out[i, :] = table[ids[i], :] (rows of rowBytes) for i < count. Checks every id first and writes nothing if
  ;; one is outside [0, rows): returns its position, or −1 when all were copied.
  (func (export "gatherRows") (param $table i32) (param $rows i32) (param $rowBytes i32) (param $ids i32) (param $count i32) (param $out i32) (result i32)
    (local $i i32) (local $id i32)
    (block $cd (loop $cl
      (br_if $cd (i32.ge_u (local.get $i) (local.get $count)))
      (if (i32.ge_u (i32.load (i32.add (local.get $ids) (i32.shl (local.get $i) (i32.const 2)))) (local.get $rows)) (then (return (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $cl)))
    (local.set $i (i32.const 0))
    (block $gd (loop $gl
      (br_if $gd (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $id (i32.load (i32.add (local.get $ids) (i32.shl (local.get $i) (i32.const 2)))))
      (memory.copy (local.get $out) (i32.add (local.get $table) (i32.mul (local.get $id) (local.get $rowBytes))) (local.get $rowBytes))
      (local.set $out (i32.add (local.get $out) (local.get $rowBytes)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $gl)))
    (i32.const -1))
)
