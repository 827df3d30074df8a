import VirtioProtocol

/// What each front-end request carries and whether the back-end answers it (vhost-user.rst,
/// "Front-end message types"). The one place the framing layer learns a request's shape.
extension VhostUserRequest {
    public enum PayloadShape: Sendable, Equatable {
        case none, u64, vringState, vringAddress, memoryTable, singleRegion, vringFile, config, inflight, logBase, other
    }

    public var payloadShape: PayloadShape {
        switch self {
        case .getFeatures, .setOwner, .resetOwner, .getProtocolFeatures, .getQueueNum, .getMaxMemSlots,
             .resetDevice, .postcopyAdvise, .postcopyListen, .getStatus:
            return .none
        case .setFeatures, .setProtocolFeatures, .setLogFd, .sendRarp, .netSetMtu, .setBackendReqFd, .postcopyEnd,
             .setStatus, .gpuSetSocket:
            return .u64
        case .setVringNum, .setVringBase, .getVringBase, .setVringEnable, .setVringEndian, .vringKick:
            return .vringState
        case .setVringAddr: return .vringAddress
        case .setMemTable: return .memoryTable
        case .addMemReg, .remMemReg: return .singleRegion
        case .setVringKick, .setVringCall, .setVringErr: return .vringFile
        case .getConfig, .setConfig: return .config
        case .getInflightFd, .setInflightFd: return .inflight
        case .setLogBase: return .logBase
        case .iotlbMsg, .createCryptoSession, .closeCryptoSession, .getSharedObject, .setDeviceStateFd, .checkDeviceState:
            return .other
        }
    }

    /// Whether the back-end replies even without NEED_REPLY (given the negotiated protocol features).
    public func alwaysReplies(protocolFeatures: UInt64) -> Bool {
        switch self {
        case .getFeatures, .getProtocolFeatures, .getVringBase, .getQueueNum, .getConfig, .getMaxMemSlots,
             .getStatus, .postcopyAdvise, .postcopyListen, .postcopyEnd, .getSharedObject, .setDeviceStateFd,
             .checkDeviceState, .createCryptoSession, .getInflightFd:
            return true
        case .setLogBase:
            return protocolFeatures & ProtocolFeatureBit.logShmfd.mask != 0
        case .setMemTable, .addMemReg:
            // With postcopy the back-end answers the table with its own mappings; not modelled here.
            return false
        default:
            return false
        }
    }

    /// Whether the front-end's message carries fds.
    public enum FdPolicy: Sendable, Equatable {
        case none
        /// Exactly one (ADD_MEM_REG, SET_LOG_BASE with LOG_SHMFD, SET_LOG_FD, SET_BACKEND_REQ_FD, SET_INFLIGHT_FD, ...).
        case one
        /// One unless the payload's NOFD bit is set (KICK/CALL/ERR).
        case oneUnlessNoFd
        /// One per region, in region order (SET_MEM_TABLE).
        case onePerRegion
    }

    public var fdPolicy: FdPolicy {
        switch self {
        case .setMemTable: return .onePerRegion
        case .setVringKick, .setVringCall, .setVringErr: return .oneUnlessNoFd
        case .addMemReg, .setLogBase, .setLogFd, .setBackendReqFd, .setInflightFd, .setDeviceStateFd, .gpuSetSocket:
            return .one
        default: return .none
        }
    }
}
