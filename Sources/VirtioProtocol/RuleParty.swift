/// Which side of the protocol a rule holds to account. `drive` judges a back-end only on the
/// device's rules: a finding against a driver rule in a `drive` trace is either a breach the
/// scenario planted on purpose or a defect of `drive` itself, never the back-end's fault.
public enum RuleParty: String, Sendable {
    /// The driver / front-end: what it writes into the rings and the messages it sends.
    case driver
    /// The device / back-end: what it does with the rings, and which requests it accepts.
    case device
}

extension RuleID {
    /// The side the rule judges. Exhaustive on purpose: a new rule must say whose rule it is.
    public var party: RuleParty {
        switch self {
        case .vqInflight, .vqDriverOwnership, .vqDescIndex, .vqChainLoop, .vqChainOrder,
             .vqIndirectFeature, .vqIndirectNext, .vqIndirectNested, .vqIndirectLen,
             .netTxqInactive, .netMQPairsRange:
            return .driver
        // A queue size is the front-end's choice; a back-end accepting a bad one is judged only
        // where the kernel refuses it, which `drive` never asks of a vhost-user back-end.
        case .vqSize:
            return .driver
        // The front-end's ring layout, addresses, messages and negotiation.
        case .vqChainLength, .vqInOrderNext, .vqKickMissed, .vqRingAlign, .vhostMemRingAddr,
             .vhostMemBufferAddr, .vhostVringBaseResume, .vhostFeaturesOffered, .vhostUserVringIndex, .vhostUserEnableGate,
             .vhostUserProtocolGate, .vhostUserInbandGate, .netFeatureDeps, .netTxFraming, .netRxFraming:
            return .driver
        // avail.flags is the driver's, used.flags the device's: `drive` writes avail.flags only
        // as 0 or NO_INTERRUPT without EVENT_IDX, so a finding here is the device's used.flags.
        case .vqNotifyFlags:
            return .device
        case .vhostVringBaseRange, .vhostRingBusy, .vhostLogBeforeUsed, .vhostUserDisabledTxDrain,
             .netRxUsedLen, .netRxNumBuffers, .netRxHdrOffload:
            return .device
        // Packed rings: what the driver writes into descriptors, and what the device does with them.
        case .packedSize, .packedDriverOwnership, .packedFlagsLast, .packedChainHeadLast, .packedBufferId,
             .packedIndirectFlags, .packedKickMissed:
            return .driver
        case .packedDeviceOwnership, .packedDeviceOrder, .packedUsedId, .packedInterruptMissed:
            return .device
        // Both sides flip wrap counters and write event suppression structures; as with
        // VQ-NOTIFY-FLAGS, what `drive` writes is correct by construction, so a finding is the device's.
        case .packedWrapCounter, .packedEventFlags:
            return .device
        case .vqAvailRead, .vqUsedId, .vqUsedIdx, .vqUsedLen, .vqInterruptMissed,
             .vhostSingleConsumer, .vhostMapping, .vhostWorkerLifecycle,
             .vhostOwnerFirst, .vhostOwnerTwice, .vhostOwnerCompat,
             .vhostRingNotReady, .vhostRingStopped, .netRxqInactive:
            return .device
        }
    }
}
