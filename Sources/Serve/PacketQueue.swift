import Glibc
import Synchronization

/// Frames on their way from TX[k] to RX[k] (loopback): a bounded single-producer single-consumer
/// ring of fixed slots, so a hand-off between two workers costs two atomic operations and no
/// allocation. The producer is the worker serving TX[k], the consumer the one serving RX[k]; when
/// the ring is full the frame is dropped (as testpmd's io forwarding drops what its TX ring refuses).
final class PacketQueue: @unchecked Sendable {
    static let slotBytes = 2048
    let capacity: Int
    private let slots: UnsafeMutableRawPointer
    private let lengths: UnsafeMutablePointer<Int>
    /// Free-running: the producer advances `tail`, the consumer `head`.
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)

    init(capacity: Int = 1024) {
        self.capacity = capacity
        slots = UnsafeMutableRawPointer.allocate(byteCount: capacity * Self.slotBytes, alignment: 64)
        lengths = UnsafeMutablePointer<Int>.allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
    }

    deinit { slots.deallocate(); lengths.deallocate() }

    var count: Int { tail.load(ordering: .acquiring) - head.load(ordering: .acquiring) }
    var isEmpty: Bool { count == 0 }

    /// Producer: frames filled but not yet published (`publish` hands them to the consumer at once).
    private var staged = 0

    /// Producer: the slot to fill next (after the staged ones), or nil when full.
    func reserve() -> UnsafeMutableRawBufferPointer? {
        let t = tail.load(ordering: .relaxed) + staged
        guard t - head.load(ordering: .acquiring) < capacity else { return nil }
        return UnsafeMutableRawBufferPointer(start: slots + (t % capacity) * Self.slotBytes, count: Self.slotBytes)
    }

    /// Producer: the reserved slot holds a frame of `length` bytes; staged until `publish`.
    func commit(length: Int) {
        let t = tail.load(ordering: .relaxed) + staged
        lengths[t % capacity] = length
        staged += 1
    }

    /// Producer: hands every staged frame to the consumer; how many.
    @discardableResult
    func publish() -> Int {
        let n = staged
        guard n > 0 else { return 0 }
        tail.store(tail.load(ordering: .relaxed) + n, ordering: .releasing)
        staged = 0
        return n
    }

    /// Consumer: the oldest frame, if any (valid until `pop`).
    func peek() -> UnsafeRawBufferPointer? {
        let h = head.load(ordering: .relaxed)
        guard tail.load(ordering: .acquiring) != h else { return nil }
        return UnsafeRawBufferPointer(start: slots + (h % capacity) * Self.slotBytes, count: lengths[h % capacity])
    }

    func pop() {
        head.store(head.load(ordering: .relaxed) + 1, ordering: .releasing)
    }

    /// Consumer: drops everything queued; returns how many.
    @discardableResult
    func drain() -> Int {
        let h = head.load(ordering: .relaxed), t = tail.load(ordering: .acquiring)
        head.store(t, ordering: .releasing)
        return t - h
    }
}
