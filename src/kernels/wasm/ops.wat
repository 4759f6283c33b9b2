;; Reductions and the row gather for our tfjs kernels (src/tfjs/ops.ts binds them to the tfjs wasm backend's
;; memory, which this module imports; tanh and exp are in map.wat.mjs). Each loop's order depends on the shapes only, so results
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
