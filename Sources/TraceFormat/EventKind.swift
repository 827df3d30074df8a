/// Every event kind of trace format v1, with the meaning of each payload slot.
/// The field table below is the single definition used by the binary codec, the text form
/// and the format documentation.
public enum EventKind: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    // Control plane: `aux` holds the result as a signed 16-bit value (0 or -errno).
    case setOwner = 0x01
    case resetOwner = 0x02
    case setFeatures = 0x03
    case setProtocolFeatures = 0x04
    case getQueueNum = 0x05
    case setMemTable = 0x06
    case setVringNum = 0x07
    case setVringAddr = 0x08
    case setVringBase = 0x09
    case getVringBase = 0x0A
    case setVringKick = 0x0B
    case setVringCall = 0x0C
    case setVringEnable = 0x0D
    case newWorker = 0x0E
    case freeWorker = 0x0F
    case attachVringWorker = 0x10
    case setBackend = 0x11
    case mqPairsSet = 0x12
    case mqPairsAck = 0x13
    // Control plane, vhost-user messages QEMU sends that carry no ring state of their own.
    case setVringErr = 0x14
    case setStatus = 0x15
    case getStatus = 0x16
    case setBackendReqFd = 0x17
    // Control plane: memory table, offers, in-band notifications, dirty log, device reset.
    case memRegion = 0x18
    case getProtocolFeatures = 0x19
    case vringKickMsg = 0x1A
    case backendVringCall = 0x1B
    case setLogBase = 0x1C
    case vringLog = 0x1D
    case resetDevice = 0x1E
    case getFeatures = 0x1F
    // Driver actions.
    case desc = 0x20
    case indirectDesc = 0x21
    case availEntry = 0x22
    case availIdx = 0x23
    case kick = 0x24
    case availFlags = 0x25
    case usedEvent = 0x26
    case ringReset = 0x27
    // Driver actions on packed rings (VIRTIO_F_RING_PACKED).
    case packedDesc = 0x28
    case packedFlags = 0x29
    case packedIndirectDesc = 0x2A
    case driverEvent = 0x2B
    // Device actions.
    case availRead = 0x30
    case usedEntry = 0x31
    case usedIdx = 0x32
    case interrupt = 0x33
    case usedFlags = 0x34
    case availEvent = 0x35
    case rxHeader = 0x36
    case logDirty = 0x37
    // Device actions on packed rings.
    case packedRead = 0x38
    case packedUsed = 0x39
    case packedUsedFlags = 0x3A
    case deviceEvent = 0x3B
    // Worker scheduling.
    case serviceBegin = 0x40
    case serviceEnd = 0x41
    // Observation: what a polling recorder saw and could not see (see "Snapshots" in trace-format.md).
    case poll = 0x50
    case ringGap = 0x51
    case usedSlot = 0x52
    /// A recorder's capture ended here (the connection closed, --duration, a signal, --max-events,
    /// its first finding, a failure): what the peers did after it is not in the trace.
    case captureEnd = 0x53

    /// Code ranges, so that new kinds land in the right plane: 0x01-0x1F and 0x60-0x7F control,
    /// 0x20-0x2F driver, 0x30-0x3F device, 0x40-0x4F worker, 0x50-0x5F observation.
    public enum Plane: String, Sendable { case control, driver, device, worker, observation }

    @inlinable @inline(__always) public var plane: Plane {
        switch rawValue {
        case 0x20...0x2F: return .driver
        case 0x30...0x3F: return .device
        case 0x40...0x4F: return .worker
        case 0x50...0x5F: return .observation
        default: return .control
        }
    }

    /// Text-form name.
    public var name: String {
        switch self {
        case .setOwner: return "set_owner"
        case .resetOwner: return "reset_owner"
        case .setFeatures: return "set_features"
        case .setProtocolFeatures: return "set_protocol_features"
        case .getQueueNum: return "get_queue_num"
        case .setMemTable: return "set_mem_table"
        case .setVringNum: return "set_vring_num"
        case .setVringAddr: return "set_vring_addr"
        case .setVringBase: return "set_vring_base"
        case .getVringBase: return "get_vring_base"
        case .setVringKick: return "set_vring_kick"
        case .setVringCall: return "set_vring_call"
        case .setVringEnable: return "set_vring_enable"
        case .newWorker: return "new_worker"
        case .freeWorker: return "free_worker"
        case .attachVringWorker: return "attach_vring_worker"
        case .setBackend: return "set_backend"
        case .mqPairsSet: return "mq_pairs_set"
        case .mqPairsAck: return "mq_pairs_ack"
        case .setVringErr: return "set_vring_err"
        case .setStatus: return "set_status"
        case .getStatus: return "get_status"
        case .setBackendReqFd: return "set_backend_req_fd"
        case .memRegion: return "mem_region"
        case .getProtocolFeatures: return "get_protocol_features"
        case .vringKickMsg: return "vring_kick_msg"
        case .backendVringCall: return "backend_vring_call"
        case .setLogBase: return "set_log_base"
        case .vringLog: return "vring_log"
        case .resetDevice: return "reset_device"
        case .getFeatures: return "get_features"
        case .desc: return "desc"
        case .indirectDesc: return "indirect_desc"
        case .availEntry: return "avail_entry"
        case .availIdx: return "avail_idx"
        case .kick: return "kick"
        case .availFlags: return "avail_flags"
        case .usedEvent: return "used_event"
        case .ringReset: return "ring_reset"
        case .packedDesc: return "packed_desc"
        case .packedFlags: return "packed_flags"
        case .packedIndirectDesc: return "packed_indirect_desc"
        case .driverEvent: return "driver_event"
        case .packedRead: return "packed_read"
        case .packedUsed: return "packed_used"
        case .packedUsedFlags: return "packed_used_flags"
        case .deviceEvent: return "device_event"
        case .availRead: return "avail_read"
        case .usedEntry: return "used_entry"
        case .usedIdx: return "used_idx"
        case .interrupt: return "interrupt"
        case .usedFlags: return "used_flags"
        case .availEvent: return "avail_event"
        case .rxHeader: return "rx_header"
        case .logDirty: return "log_dirty"
        case .serviceBegin: return "service_begin"
        case .serviceEnd: return "service_end"
        case .poll: return "poll"
        case .ringGap: return "ring_gap"
        case .usedSlot: return "used_slot"
        case .captureEnd: return "capture_end"
        }
    }

    public var description: String { name }

    public static let byName: [String: EventKind] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })

    /// Whether the event must name a virtqueue (`vq` < queue count), may name one, or must not.
    public enum VQUse: Sendable { case required, optional, none }

    @inlinable public var vqUse: VQUse {
        switch self {
        // linux-upstream has one vhost device per queue pair: SET_OWNER/RESET_OWNER may name a vq
        // of the pair whose device they address.
        case .setOwner, .resetOwner:
            return .optional
        // A vring beyond the header's queue count has no vq to name.
        case .ringGap:
            return .optional
        case .setFeatures, .setProtocolFeatures, .getQueueNum, .setMemTable,
             .newWorker, .freeWorker, .mqPairsSet, .mqPairsAck, .setStatus, .getStatus, .setBackendReqFd,
             .memRegion, .getProtocolFeatures, .setLogBase, .resetDevice, .getFeatures, .captureEnd:
            return .none
        default:
            return .required
        }
    }

    /// Whether the `worker` field is meaningful (device and worker events); otherwise it must be 0xFFFF.
    @inlinable public var hasWorker: Bool { plane == .device || plane == .worker }

    /// The named payload fields, in text-form order.
    public var fields: [Field] {
        switch self {
        case .setOwner: return [.result, Field("workers", .p0, note: "worker count passed to SET_OWNER; 0 = legacy call without an argument")]
        case .resetOwner: return [.result]
        case .setFeatures: return [.result, Field("features", .p0, hex: true, note: "virtio feature bits")]
        case .setProtocolFeatures: return [.result, Field("features", .p0, hex: true, note: "vhost-user protocol feature bits")]
        case .getQueueNum: return [.result, Field("num", .p0, width: 16, note: "queue count the back-end reported")]
        case .setMemTable: return [.result, Field("regions", .p0, note: "number of memory regions")]
        case .setVringNum: return [.result, Field("num", .p0, width: 32, note: "queue size")]
        case .setVringAddr: return [.result, Field("desc", .p0, hex: true, note: "descriptor table address"),
                                    Field("avail", .p1, hex: true, note: "available ring address"),
                                    Field("used", .p2, hex: true, note: "used ring address")]
        case .setVringBase: return [.result, Field("base", .p0, width: 16, note: "next avail index the device will read")]
        case .getVringBase: return [.result, Field("base", .p0, width: 16, note: "the device's next avail index, as returned; stops a vhost-user ring, only reads it on kernel vhost (detach the backend to stop a kernel ring)")]
        case .setVringKick, .setVringCall, .setVringErr: return [.result, Field("fd", .p0, note: "vhost-user: 0, or the 0x100 bit when no fd is passed (kick: the back-end polls; call: the front-end polls, no interrupt is owed); kernel vhost: the fd number, 0xFFFFFFFFFFFFFFFF (-1) for none")]
        case .setVringEnable: return [.result, Field("enable", .p0, width: 1, note: "1 enables, 0 disables")]
        case .newWorker: return [.result, Field("id", .p0, note: "worker id returned")]
        case .freeWorker: return [.result, Field("id", .p0, note: "worker id to free")]
        case .attachVringWorker: return [.result, Field("id", .p0, note: "worker id to attach to vq")]
        case .setBackend: return [.result, Field("fd", .p0, note: "tap fd; 0xFFFFFFFFFFFFFFFF detaches (stops the ring)")]
        case .mqPairsSet: return [Field("pairs", .p0, width: 16, note: "virtqueue_pairs the driver asked for (command made available)")]
        case .mqPairsAck: return [Field("ack", .p0, width: 8, note: "ack byte the device wrote (0 OK, 1 ERR)")]
        case .desc: return [Field("idx", .aux, note: "descriptor table index")] + Field.descriptor
        case .indirectDesc: return [Field("idx", .aux, note: "entry index within the indirect table"),
                                    Field("parent", .p2, width: 16, note: "index of the main-table descriptor whose INDIRECT buffer is this table")] + Field.descriptor
        case .availEntry: return [Field("pos", .p0, width: 16, note: "free-running avail index of the entry (slot = pos mod N)"),
                                  Field("head", .aux, note: "chain head descriptor index")]
        case .availIdx: return [Field("idx", .p0, width: 16, note: "new avail.idx")]
        case .kick, .interrupt: return []
        case .availFlags: return [Field("flags", .p0, width: 16, note: "avail.flags (1 = NO_INTERRUPT)")]
        case .usedEvent: return [Field("idx", .p0, width: 16, note: "used_event value the driver wrote")]
        case .availRead: return [Field("pos", .p0, width: 16, note: "free-running avail index the device read"),
                                 Field("head", .aux, note: "head index it found there")]
        case .usedEntry: return [Field("pos", .p0, width: 16, note: "free-running used index of the element (slot = pos mod N)"),
                                 Field("id", .p1, width: 32, note: "head of the completed chain"),
                                 Field("len", .p2, width: 32, note: "bytes written into the device-writable part")]
        case .usedIdx: return [Field("idx", .p0, width: 16, note: "new used.idx")]
        case .usedFlags: return [Field("flags", .p0, width: 16, note: "used.flags (1 = NO_NOTIFY)")]
        case .availEvent: return [Field("idx", .p0, width: 16, note: "avail_event value the device wrote")]
        case .serviceBegin, .serviceEnd: return []
        case .packedDesc: return [Field("slot", .aux, note: "descriptor ring slot (0 to N-1)")] + Field.packedBody
        case .packedFlags: return [Field("slot", .aux, note: "descriptor ring slot (0 to N-1)"),
                                   Field("flags", .packedFlagsP0, note: "the flags stored (the store that makes the descriptor available): NEXT=1, WRITE=2, INDIRECT=4, AVAIL=0x80, USED=0x8000")]
        case .packedIndirectDesc: return [Field("idx", .aux, note: "entry index within the indirect table"),
                                          Field("parent", .p2, width: 16, note: "ring slot of the descriptor whose INDIRECT buffer is this table")] + Field.packedBody
            + [Field("flags", .packedFlagsP1, note: "entry flags (only WRITE=2 is valid in a packed indirect table)")]
        case .driverEvent, .deviceEvent:
            let who = self == .driverEvent ? "Driver Event Suppression (the device's used buffer notifications)" : "Device Event Suppression (the driver's available buffer notifications)"
            return [Field("off_wrap", .p0, hex: true, width: 16, note: "\(who): desc_event_off (bits 0-14) and desc_event_wrap (bit 15)"),
                    Field("flags", .p1, width: 16, note: "desc_event_flags: 0 ENABLE, 1 DISABLE, 2 DESC (EVENT_IDX only), 3 reserved; bits 2-15 reserved")]
        case .packedRead: return [Field("slot", .aux, note: "descriptor ring slot the device takes for processing (after seeing it available)")]
        case .packedUsed: return [Field("slot", .aux, note: "descriptor ring slot of the used descriptor"),
                                  Field("len", .descLen, note: "bytes written into the buffer (meaningful with WRITE in the flags)"),
                                  Field("id", .descId, note: "buffer id of the used buffer (IN_ORDER: of the batch's last)")]
        case .packedUsedFlags: return [Field("slot", .aux, note: "descriptor ring slot of the used descriptor"),
                                       Field("flags", .packedFlagsP0, note: "the flags stored (the store that marks it used): AVAIL=USED=the device's wrap counter, WRITE if len is valid")]
        case .setStatus: return [.result, Field("status", .p0, width: 8, note: "virtio device status byte the front-end set")]
        case .getStatus: return [.result, Field("status", .p0, width: 8, note: "virtio device status byte the back-end returned")]
        case .setBackendReqFd: return [.result]
        case .memRegion: return [Field("index", .aux, note: "region number within the SET_MEM_TABLE just before (0, 1, ...)"),
                                 Field("guest", .p0, hex: true, note: "guest physical address of the region's first byte"),
                                 Field("size", .p1, hex: true, note: "region size in bytes"),
                                 Field("user", .p2, hex: true, note: "front-end (VMM) user address of the region's first byte")]
        case .getProtocolFeatures: return [.result, Field("features", .p0, hex: true, note: "vhost-user protocol feature bits the back-end offered")]
        case .getFeatures: return [.result, Field("features", .p0, hex: true, note: "virtio feature bits the back-end offered")]
        case .vringKickMsg: return [.result]
        case .backendVringCall: return [.result]
        case .setLogBase: return [.result, Field("size", .p0, hex: true, note: "bytes of dirty log (one bit per 4 KiB page from guest address 0)")]
        case .vringLog: return [Field("log", .p0, hex: true, note: "guest physical address the used ring is logged at (SET_VRING_ADDR log_guest_addr)"),
                                Field("flags", .p1, width: 32, note: "SET_VRING_ADDR flags (bit 0 VHOST_VRING_F_LOG: used-ring writes are logged)")]
        case .resetDevice: return [.result]
        case .ringReset: return []
        case .rxHeader: return [Field("pos", .p0, width: 16, note: "free-running used position of the element whose buffer starts this packet"),
                                Field("num_buffers", .p1, width: 16, note: "num_buffers the device wrote into the virtio-net header"),
                                Field("hdr_flags", .p2, width: 8, note: "flags byte of the header (1 NEEDS_CSUM, 2 DATA_VALID, 4 RSC_INFO)"),
                                Field("gso_type", .aux, note: "gso_type byte of the header (0 NONE, 1 TCPV4, 3 UDP, 4 TCPV6, 5 UDP_L4, 0x80 ECN)")]
        case .logDirty: return [Field("addr", .p0, hex: true, note: "guest physical address of the first byte marked dirty"),
                                Field("len", .p1, width: 32, note: "bytes marked: every 4 KiB page overlapping [addr, addr+len) is dirty")]
        case .poll: return [Field("avail", .p0, width: 16, note: "avail.idx read at the start of this poll of the ring (packed: the driver's position the poll reached, wrap counter in bit 15)"),
                            Field("used", .p1, width: 16, note: "used.idx read after every avail-side read of this poll (packed: the first device position the poll found not yet used, wrap counter in bit 15)")]
        case .ringGap: return [Field("reason", .p0, width: 8, note: "why the ring's observations break here: \(RingGapReason.codeList) (that last with vq 0xFFFF)")]
        case .usedSlot: return [Field("slot", .p0, width: 16, note: "used ring slot (0 to N-1)"),
                                Field("id", .p1, width: 32, note: "id the slot held when the ring's observation began"),
                                Field("len", .p2, width: 32, note: "len the slot held then")]
        case .captureEnd: return [Field("reason", .p0, width: 8, note: "why the capture ended: \(CaptureEndReason.codeList)")]
        }
    }
}

/// One named payload field and where it lives in the event.
public struct Field: Sendable {
    public enum Slot: Sendable, Equatable {
        case aux            // bytes 6..7
        case resultAux      // bytes 6..7 as Int16
        case p0, p1, p2     // bytes 16..23, 24..31, 32..39
        case descLen        // p1 bits 0..31
        case descFlags      // p1 bits 32..47
        case descNext       // p1 bits 48..63
        case descId         // p1 bits 32..47 (packed buffer id)
        case packedFlagsP0  // p0 bits 0..15, packed descriptor flags
        case packedFlagsP1  // p1 bits 48..63, packed descriptor flags
    }
    public let name: String
    public let slot: Slot
    public let hex: Bool
    public let note: String
    /// Significant bits for p0/p1/p2 fields; higher bits must be zero.
    public let width: Int

    public init(_ name: String, _ slot: Slot, hex: Bool = false, width: Int = 64, note: String) {
        self.name = name; self.slot = slot; self.hex = hex; self.width = width; self.note = note
    }

    public var mask: UInt64 { width >= 64 ? .max : (1 << UInt64(width)) - 1 }

    public static let result = Field("result", .resultAux, note: "0 on success or a negative errno (e.g. -16 = EBUSY)")
    public static let descriptor: [Field] = [
        Field("addr", .p0, hex: true, note: "buffer guest address"),
        Field("len", .descLen, note: "buffer length in bytes"),
        Field("flags", .descFlags, note: "NEXT=1, WRITE=2, INDIRECT=4"),
        Field("next", .descNext, note: "next descriptor index when NEXT is set"),
    ]
    /// The addr, len and id of a packed descriptor (its flags are a store of their own).
    public static let packedBody: [Field] = [
        Field("addr", .p0, hex: true, note: "buffer guest address"),
        Field("len", .descLen, note: "buffer length in bytes"),
        Field("id", .descId, note: "buffer id (meaningful on the last descriptor of a list)"),
    ]
}
