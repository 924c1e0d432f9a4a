;; The scrubber's sampling step, in WebAssembly, for bench/scrub-ceiling.ts: one aligned 32-bit
;; load every `stride` bytes, one multiply, one bit test in a hashed filter; the offsets that
;; pass are noted. Layout of the linear memory: the write at 0 (up to 1 MiB), the filter at
;; 1 MiB (2^20 bits), the noted offsets at 2 MiB.
(module
  (memory (export "memory") 48)
  (func (export "sample") (param $len i32) (param $stride i32) (param $shift i32) (result i32)
    (local $p i32) (local $n i32) (local $h i32) (local $last i32)
    (local.set $last (i32.sub (local.get $len) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.gt_s (local.get $p) (local.get $last)))
        (local.set $h
          (i32.shr_u
            (i32.mul (i32.load (local.get $p)) (i32.const 0x9e3779b1))
            (local.get $shift)))
        (if
          (i32.and
            (i32.load
              (i32.add (i32.const 1048576)
                (i32.shl (i32.shr_u (local.get $h) (i32.const 5)) (i32.const 2))))
            (i32.shl (i32.const 1) (local.get $h)))
          (then
            (i32.store
              (i32.add (i32.const 2097152) (i32.shl (local.get $n) (i32.const 2)))
              (local.get $p))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (br $next)))
    (local.get $n)))
