;; regressions - on a diff tree, the nodes whose share of self grew by at least threshold_pct
;; percentage points between the baseline and the head.
;;
;;   head_share = self[i] / total[0]        base_share = base_self[i] / base_total[0]
;;   finding when (head_share - base_share) * 100 >= threshold_pct
;;
;; Nodes are reported in pre-order, at most max_findings of them; severity is "critical" when
;; the rise reaches critical_pct points. A tree that is not a diff gives no findings.
;; Config: threshold_pct (1), critical_pct (10), max_findings (50). Numbers in the config are
;; read as plain decimals (no exponent).
;;
;; Hand-written WebAssembly text: no runtime, a bump allocator, and the JSON output written
;; byte by byte after the input (it grows memory as it goes).
(module
  (memory (export "memory") 2)

  ;; NUL-terminated constants
  (data (i32.const 0) "{\"findings\":[\00")
  (data (i32.const 64) "]}\00")
  (data (i32.const 96) "{\"severity\":\"warning\"\00")
  (data (i32.const 128) "{\"severity\":\"critical\"\00")
  (data (i32.const 160) ",\"title\":\"self share regression\",\"function\":\00")
  (data (i32.const 224) ",\"value\":\00")
  (data (i32.const 240) ",\"share\":\00")
  (data (i32.const 256) ",\"base_value\":\00")
  (data (i32.const 288) ",\"base_share\":\00")
  (data (i32.const 320) ",\"delta_pct\":\00")
  (data (i32.const 352) ",\"message\":\"\00")
  (data (i32.const 384) ": self share rose from \00")
  (data (i32.const 416) "% to \00")
  (data (i32.const 432) "%\"}\00")
  (data (i32.const 448) "{\"error\":\"input is not PSF1\"}\00")
  (data (i32.const 496) "threshold_pct\00")
  (data (i32.const 512) "critical_pct\00")
  (data (i32.const 528) "max_findings\00")
  (data (i32.const 544) ",\00")
  (data (i32.const 560) "0123456789abcdef")

  (global $bump (mut i32) (i32.const 65536))   ;; heap starts on page 1
  (global $op (mut i32) (i32.const 0))         ;; output write pointer
  (global $meta (mut i32) (i32.const 0))
  (global $metalen (mut i32) (i32.const 0))

  (func (export "profscope_abi_v1"))

  ;; make sure linear memory reaches byte `end`; 0 when it cannot grow
  (func $reach (param $end i32) (result i32)
    (local $have i32)
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.le_u (local.get $end) (local.get $have)) (then (return (i32.const 1))))
    (i32.ne
      (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                              (i32.const 16)))
      (i32.const -1)))

  (func (export "psp_alloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $bump))
    (local.set $end (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7))
                             (i32.const -8)))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then (return (i32.const 0))))
    (if (i32.eqz (call $reach (local.get $end))) (then (return (i32.const 0))))
    (global.set $bump (local.get $end))
    (local.get $p))

  ;; ---------------------------------------------------------------- output
  (func $putb (param $b i32)
    (if (i32.eqz (call $reach (i32.add (global.get $op) (i32.const 1)))) (then unreachable))
    (i32.store8 (global.get $op) (local.get $b))
    (global.set $op (i32.add (global.get $op) (i32.const 1))))

  (func $puts (param $s i32)              ;; NUL-terminated constant
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $s))))
        (call $putb (i32.load8_u (local.get $s)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $next))))

  ;; bytes s[0..n) escaped for a JSON string, without quotes
  (func $put_escaped (param $s i32) (param $n i32)
    (local $c i32) (local $end i32)
    (local.set $end (i32.add (local.get $s) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $s) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $s)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 34)) (i32.eq (local.get $c) (i32.const 92)))
          (then (call $putb (i32.const 92)) (call $putb (local.get $c)))
          (else
            (if (i32.lt_u (local.get $c) (i32.const 32))
              (then
                (call $putb (i32.const 92)) (call $putb (i32.const 117))      ;; \u
                (call $putb (i32.const 48)) (call $putb (i32.const 48))       ;; 00
                (call $putb (i32.load8_u (i32.add (i32.const 560) (i32.shr_u (local.get $c) (i32.const 4)))))
                (call $putb (i32.load8_u (i32.add (i32.const 560) (i32.and (local.get $c) (i32.const 15))))))
              (else (call $putb (local.get $c))))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $next))))

  (func $put_u64 (param $x i64)
    (local $div i64)
    (local.set $div (i64.const 1))
    (block $done                          ;; largest power of ten <= x
      (loop $up
        (br_if $done (i64.gt_u (local.get $div) (i64.div_u (local.get $x) (i64.const 10))))
        (local.set $div (i64.mul (local.get $div) (i64.const 10)))
        (br $up)))
    (loop $digit
      (call $putb (i32.add (i32.const 48)
        (i32.wrap_i64 (i64.rem_u (i64.div_u (local.get $x) (local.get $div)) (i64.const 10)))))
      (local.set $div (i64.div_u (local.get $div) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $div) (i64.const 0)))))

  (func $put_i64 (param $x i64)
    (if (i64.lt_s (local.get $x) (i64.const 0))
      (then (call $putb (i32.const 45))
            (local.set $x (i64.sub (i64.const 0) (local.get $x)))))
    (call $put_u64 (local.get $x)))

  ;; x >= 0 with `d` decimals (1..9), rounded half up
  (func $put_fixed (param $x f64) (param $d i32)
    (local $scale i64) (local $units i64) (local $i i32) (local $f i64)
    (local.set $scale (i64.const 1))
    (local.set $i (local.get $d))
    (loop $pow
      (local.set $scale (i64.mul (local.get $scale) (i64.const 10)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $pow (i32.gt_s (local.get $i) (i32.const 0))))
    (if (f64.lt (local.get $x) (f64.const 0)) (then (call $putb (i32.const 45))
                                                   (local.set $x (f64.neg (local.get $x)))))
    (local.set $units (i64.trunc_sat_f64_u
      (f64.add (f64.mul (local.get $x) (f64.convert_i64_u (local.get $scale))) (f64.const 0.5))))
    (call $put_u64 (i64.div_u (local.get $units) (local.get $scale)))
    (call $putb (i32.const 46))
    (local.set $f (i64.rem_u (local.get $units) (local.get $scale)))
    (loop $digits                          ;; leading zeros of the fraction, then the rest
      (local.set $scale (i64.div_u (local.get $scale) (i64.const 10)))
      (call $putb (i32.add (i32.const 48)
        (i32.wrap_i64 (i64.rem_u (i64.div_u (local.get $f) (local.get $scale)) (i64.const 10)))))
      (br_if $digits (i64.gt_u (local.get $scale) (i64.const 1)))))

  ;; ---------------------------------------------------------------- metadata
  (func $strlen (param $s i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $is_space (param $c i32) (result i32)
    (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
            (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13)))))

  ;; the number after the first "key": in the metadata JSON, else dflt
  (func $meta_number (param $key i32) (param $dflt f64) (result f64)
    (local $k i32) (local $i i32) (local $j i32) (local $p i32) (local $end i32)
    (local $x f64) (local $scale f64) (local $neg i32) (local $digits i32) (local $c i32)
    (local.set $k (call $strlen (local.get $key)))
    (local.set $end (i32.add (global.get $meta) (global.get $metalen)))
    (local.set $i (global.get $meta))
    (block $notfound
      (loop $scan
        (br_if $notfound (i32.gt_u (i32.add (i32.add (local.get $i) (local.get $k)) (i32.const 2))
                                   (local.get $end)))
        (block $miss
          (br_if $miss (i32.ne (i32.load8_u (local.get $i)) (i32.const 34)))
          (br_if $miss (i32.ne (i32.load8_u (i32.add (i32.add (local.get $i) (local.get $k)) (i32.const 1)))
                               (i32.const 34)))
          (local.set $j (i32.const 0))
          (block $cmp_done
            (loop $cmp
              (br_if $cmp_done (i32.ge_u (local.get $j) (local.get $k)))
              (br_if $miss (i32.ne (i32.load8_u (i32.add (i32.add (local.get $i) (i32.const 1)) (local.get $j)))
                                   (i32.load8_u (i32.add (local.get $key) (local.get $j)))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $cmp)))
          (local.set $p (i32.add (i32.add (local.get $i) (local.get $k)) (i32.const 2)))
          (block $sp1 (loop $l1
            (br_if $sp1 (i32.ge_u (local.get $p) (local.get $end)))
            (br_if $sp1 (i32.eqz (call $is_space (i32.load8_u (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $l1)))
          (br_if $miss (i32.ge_u (local.get $p) (local.get $end)))
          (br_if $miss (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)))      ;; ':'
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (block $sp2 (loop $l2
            (br_if $sp2 (i32.ge_u (local.get $p) (local.get $end)))
            (br_if $sp2 (i32.eqz (call $is_space (i32.load8_u (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $l2)))
          ;; number: -?digits(.digits)?
          (if (i32.lt_u (local.get $p) (local.get $end))
            (then (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 45))
              (then (local.set $neg (i32.const 1)) (local.set $p (i32.add (local.get $p) (i32.const 1)))))))
          (block $int_done (loop $int
            (br_if $int_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
            (br_if $int_done (i32.gt_u (local.get $c) (i32.const 9)))
            (local.set $x (f64.add (f64.mul (local.get $x) (f64.const 10)) (f64.convert_i32_u (local.get $c))))
            (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $int)))
          (if (i32.lt_u (local.get $p) (local.get $end))
            (then (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 46))
              (then
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (local.set $scale (f64.const 1))
                (block $frac_done (loop $frac
                  (br_if $frac_done (i32.ge_u (local.get $p) (local.get $end)))
                  (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
                  (br_if $frac_done (i32.gt_u (local.get $c) (i32.const 9)))
                  (local.set $scale (f64.div (local.get $scale) (f64.const 10)))
                  (local.set $x (f64.add (local.get $x)
                                         (f64.mul (f64.convert_i32_u (local.get $c)) (local.get $scale))))
                  (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
                  (local.set $p (i32.add (local.get $p) (i32.const 1)))
                  (br $frac)))))))
          (if (i32.eqz (local.get $digits)) (then (return (local.get $dflt))))
          (if (local.get $neg) (then (return (f64.neg (local.get $x)))))
          (return (local.get $x)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.get $dflt))

  ;; ---------------------------------------------------------------- analysis
  (func (export "psp_analyze") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $parent i32) (local $name i32) (local $self i32) (local $total i32)
    (local $bself i32) (local $btotal i32) (local $stroff i32) (local $strdata i32)
    (local $thr f64) (local $crit f64) (local $maxf i32) (local $count i32) (local $i i32)
    (local $ht f64) (local $bt f64) (local $hs f64) (local $bs f64) (local $d f64)
    (local $nm i32) (local $s0 i32) (local $s1 i32) (local $out i32)
    (if (i32.or (i32.lt_u (local.get $len) (i32.const 64))
                (i32.or (i32.ne (i32.load (local.get $ptr)) (i32.const 0x31465350))       ;; "PSF1"
                        (i32.ne (i32.load offset=60 (local.get $ptr)) (local.get $len))))
      (then (return (i64.or (i64.shl (i64.extend_i32_u (call $strlen (i32.const 448))) (i64.const 32))
                            (i64.const 448)))))
    (local.set $n (i32.load offset=12 (local.get $ptr)))
    (local.set $parent (i32.add (local.get $ptr) (i32.load offset=20 (local.get $ptr))))
    (local.set $name (i32.add (local.get $ptr) (i32.load offset=24 (local.get $ptr))))
    (local.set $self (i32.add (local.get $ptr) (i32.load offset=28 (local.get $ptr))))
    (local.set $total (i32.add (local.get $ptr) (i32.load offset=32 (local.get $ptr))))
    (local.set $bself (i32.add (local.get $ptr) (i32.load offset=36 (local.get $ptr))))
    (local.set $btotal (i32.add (local.get $ptr) (i32.load offset=40 (local.get $ptr))))
    (local.set $stroff (i32.add (local.get $ptr) (i32.load offset=44 (local.get $ptr))))
    (local.set $strdata (i32.add (local.get $ptr) (i32.load offset=48 (local.get $ptr))))
    (global.set $meta (i32.add (local.get $ptr) (i32.load offset=52 (local.get $ptr))))
    (global.set $metalen (i32.load offset=56 (local.get $ptr)))
    (local.set $thr (call $meta_number (i32.const 496) (f64.const 1)))
    (local.set $crit (call $meta_number (i32.const 512) (f64.const 10)))
    (local.set $maxf (i32.trunc_sat_f64_s (call $meta_number (i32.const 528) (f64.const 50))))

    (local.set $out (global.get $bump))
    (global.set $op (local.get $out))
    (call $puts (i32.const 0))
    (if (i32.and (i32.and (i32.load offset=8 (local.get $ptr)) (i32.const 1))
                 (i32.gt_u (local.get $n) (i32.const 0)))
      (then
        (local.set $ht (f64.convert_i64_s (i64.load (local.get $total))))
        (local.set $bt (f64.convert_i64_s (i64.load (local.get $btotal))))
        (local.set $i (i32.const 1))
        (block $done
          (loop $node
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (br_if $done (i32.ge_s (local.get $count) (local.get $maxf)))
            (local.set $hs (f64.const 0))
            (local.set $bs (f64.const 0))
            (if (f64.gt (local.get $ht) (f64.const 0))
              (then (local.set $hs (f64.div (f64.convert_i64_s
                      (i64.load (i32.add (local.get $self) (i32.shl (local.get $i) (i32.const 3)))))
                      (local.get $ht)))))
            (if (f64.gt (local.get $bt) (f64.const 0))
              (then (local.set $bs (f64.div (f64.convert_i64_s
                      (i64.load (i32.add (local.get $bself) (i32.shl (local.get $i) (i32.const 3)))))
                      (local.get $bt)))))
            (local.set $d (f64.mul (f64.sub (local.get $hs) (local.get $bs)) (f64.const 100)))
            (if (f64.ge (local.get $d) (local.get $thr))
              (then
                (if (local.get $count) (then (call $puts (i32.const 544))))
                (call $puts (select (i32.const 128) (i32.const 96) (f64.ge (local.get $d) (local.get $crit))))
                (call $puts (i32.const 160))
                (local.set $nm (i32.load (i32.add (local.get $name) (i32.shl (local.get $i) (i32.const 2)))))
                (local.set $s0 (i32.load (i32.add (local.get $stroff) (i32.shl (local.get $nm) (i32.const 2)))))
                (local.set $s1 (i32.load (i32.add (local.get $stroff)
                                                  (i32.shl (i32.add (local.get $nm) (i32.const 1)) (i32.const 2)))))
                (call $putb (i32.const 34))
                (call $put_escaped (i32.add (local.get $strdata) (local.get $s0)) (i32.sub (local.get $s1) (local.get $s0)))
                (call $putb (i32.const 34))
                (call $puts (i32.const 224))
                (call $put_i64 (i64.load (i32.add (local.get $self) (i32.shl (local.get $i) (i32.const 3)))))
                (call $puts (i32.const 240))
                (call $put_fixed (local.get $hs) (i32.const 6))
                (call $puts (i32.const 256))
                (call $put_i64 (i64.load (i32.add (local.get $bself) (i32.shl (local.get $i) (i32.const 3)))))
                (call $puts (i32.const 288))
                (call $put_fixed (local.get $bs) (i32.const 6))
                (call $puts (i32.const 320))
                (call $put_fixed (local.get $d) (i32.const 3))
                (call $puts (i32.const 352))
                (call $put_escaped (i32.add (local.get $strdata) (local.get $s0)) (i32.sub (local.get $s1) (local.get $s0)))
                (call $puts (i32.const 384))
                (call $put_fixed (f64.mul (local.get $bs) (f64.const 100)) (i32.const 1))
                (call $puts (i32.const 416))
                (call $put_fixed (f64.mul (local.get $hs) (f64.const 100)) (i32.const 1))
                (call $puts (i32.const 432))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $node)))))
    (call $puts (i32.const 64))
    (i64.or (i64.shl (i64.extend_i32_u (i32.sub (global.get $op) (local.get $out))) (i64.const 32))
            (i64.extend_i32_u (local.get $out))))
)
