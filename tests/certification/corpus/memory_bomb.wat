;; memory_bomb.wat: grows its memory a page at a time until the sandbox refuses, then traps.
(module
  (memory (export "memory") 1)
  (func (export "on_order_created") (result i32)
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
