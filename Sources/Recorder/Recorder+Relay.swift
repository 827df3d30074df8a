import CSupport
import Glibc
import TraceFormat
import VhostUser
import VirtioProtocol

/// Relaying messages: read one whole message (bounded), look at it, forward the same bytes and fds.
extension Recorder {
    func relay(fromFrontend: Bool) {
        guard let src = fromFrontend ? frontend : backend, let dst = fromFrontend ? backend : frontend else { return }
        let side = fromFrontend ? "front-end" : "back-end", other = fromFrontend ? "back-end" : "front-end"
        let m: Message
        do { m = try src.receive(within: ioBound(options.stallTimeout)) } catch {
            stopReason = ending(error, side: side, closed: fromFrontend ? .frontendClosed : .backendClosed)
            return
        }
        if options.verbose {
            log("record: \(fromFrontend ? "front-end ->" : "<- back-end") \(m.name) flags=0x\(String(m.header.flags.rawValue, radix: 16)) size=\(m.payload.count) fds=\(m.fds.count)")
        }
        // Look first (mapping needs the fds before they are passed on), then forward unchanged.
        if fromFrontend { observeRequest(m) } else { observeReply(m) }
        var out = m
        if let ip = interposer {
            if fromFrontend {
                switch ip.rewriteRequest(m, rings: rings, memory: memory, queueCount: header.queueCount, features: features) {
                case .forward(let r): out = r
                case .fail(let why):
                    m.closeFds()
                    stopReason = .failed("--interpose: \(why)")
                    return
                }
            } else {
                out = ip.rewriteReply(m)
            }
        } else if fromFrontend && options.relayNotifications { out = interpose(m) }
        do { try dst.send(out, within: ioBound(options.stallTimeout)) } catch {
            stopReason = ending(error, side: other, closed: fromFrontend ? .backendClosed : .frontendClosed)
        }
        m.closeFds()
        // An interposed eventfd (`out.fds`) stays open: its relay owns it.
        if fromFrontend && stopReason == nil { afterForward(m) }
    }

    /// How a failed socket operation ends the session.
    private func ending(_ e: VhostUserError, side: String, closed: RecordResult.End) -> RecordResult.End {
        switch e {
        case .closed: return closed
        case .stopped: return .signal
        case .timedOut(let why):
            if cs_now_ns() >= deadline { return .duration }
            return .failed("the \(side) stalled: \(why) for \(options.stallTimeout) s")
        case .malformed, .io: return .failed("the \(side) sent a message that cannot be relayed: \(e)")
        }
    }

    /// The vring a message names, if the trace can say it; otherwise the front-end's error, reported
    /// once per index (the message is still forwarded: refusing it is the back-end's job).
    func vring(_ index: UInt64, in m: Message) -> UInt16? {
        guard index < UInt64(header.queueCount) else {
            if reportedVrings.count < Recorder.maxPeerErrors, reportedVrings.insert(index).inserted {
                let e = "\(m.name) names vring \(index), beyond the trace's \(header.queueCount) queues (--queues): the front-end's error; forwarded, not recorded"
                result.peerErrors.append(e)
                log("record: \(e)")
                // The trace says so too: a device-wide gap, so that it never checks as conformant.
                emitControl(TraceEvent(.ringGap, timestamp: now, p0: UInt64(RingGapReason.beyondHeader.rawValue), flags: .sampled))
            } else if !reportedVrings.contains(index) {
                note("vring-beyond-the-queue-count", "record: \(m.name) names vring \(index), beyond the trace's \(header.queueCount) queues; not recorded")
            }
            return nil
        }
        let vq = UInt16(index)
        rings.add(vq)
        return vq
    }

    private func short(_ m: Message) {
        note("too-short", "record: \(m.name) with a \(m.payload.count)-byte payload is too short; forwarded, not recorded")
    }

    func observeRequest(_ m: Message) {
        if m.wantsReply(protocolFeatures: protocolFeatures),
           outstanding[m.header.request] != nil || outstanding.count < Recorder.maxOutstandingKinds {
            outstanding[m.header.request, default: 0] &+= 1
        }
        guard let req = m.request else { return }
        let t = now
        switch req {
        case .setOwner:
            emitControl(.control(.setOwner, t: t))
        case .resetOwner:
            rings.stopAll()
            interposer?.stopAll()
            emitControl(.control(.resetOwner, t: t))
        case .setFeatures:
            guard let f = m.decode(U64Payload.self) else { return short(m) }
            features = f.value
            emitControl(.control(.setFeatures, value: f.value, t: t))
        case .setProtocolFeatures:
            guard let f = m.decode(U64Payload.self) else { return short(m) }
            protocolFeatures = f.value
            emitControl(.control(.setProtocolFeatures, value: f.value, t: t))
        case .setMemTable:
            setMemTable(m, t: t)
        case .addMemReg:
            guard let r = m.decode(SingleRegionPayload.self) else { return short(m) }
            pollRings()
            if m.fds.count != 1 {
                note("add-mem-reg", "record: ADD_MEM_REG carries \(m.fds.count) fds (1 expected); region not mapped")
            } else {
                do { try memory.add(r.region, fd: m.fds[0]) } catch { note("add-mem-reg", "record: ADD_MEM_REG: \(error); rings in it are not followed") }
            }
            memoryChanged()
        case .remMemReg:
            guard let r = m.decode(SingleRegionPayload.self) else { return short(m) }
            pollRings()
            memory.remove(r.region)
            memoryChanged()
        case .setVringNum:
            guard let s = m.decode(VringState.self) else { return short(m) }
            guard let vq = vring(UInt64(s.index), in: m) else { return }
            rings[vq].config.size = s.num
            emitControl(.control(.setVringNum, vq: vq, value: UInt64(s.num), t: t))
        case .setVringAddr:
            guard let a = m.decode(VringAddress.self) else { return short(m) }
            guard let vq = vring(UInt64(a.index), in: m) else { return }
            rings[vq].config.desc = a.desc; rings[vq].config.used = a.used; rings[vq].config.avail = a.avail
            rings[vq].config.addrSet = true
            emitControl(TraceEvent(.setVringAddr, vq: vq, timestamp: t, p0: a.desc, p1: a.avail, p2: a.used))
        case .setVringBase:
            guard let s = m.decode(VringState.self) else { return short(m) }
            guard let vq = vring(UInt64(s.index), in: m) else { return }
            rings[vq].config.base = UInt16(truncatingIfNeeded: s.num)
            rings[vq].config.baseUsed = UInt16(truncatingIfNeeded: s.num >> 16)
            emitControl(.control(.setVringBase, vq: vq, value: UInt64(s.num & 0xffff), t: t))
        case .getVringBase:
            guard let s = m.decode(VringState.self) else { return short(m) }
            guard let vq = vring(UInt64(s.index), in: m) else { return }
            if awaitingVringBase.count < Recorder.maxAwaitingVringBase { awaitingVringBase.append(vq) }
        case .setVringKick, .setVringCall, .setVringErr:
            guard let f = m.decode(VringFile.self) else { return short(m) }
            guard let vq = vring(UInt64(f.index), in: m) else { return }
            let kind: EventKind = req == .setVringKick ? .setVringKick : req == .setVringCall ? .setVringCall : .setVringErr
            emitControl(.control(kind, vq: vq, value: f.noFd ? VhostUser.vringNoFdMask : 0, t: t))
        case .setVringEnable:
            guard let s = m.decode(VringState.self) else { return short(m) }
            guard let vq = vring(UInt64(s.index), in: m) else { return }
            let e = TraceEvent.control(.setVringEnable, vq: vq, value: s.num != 0 ? 1 : 0, t: t)
            // Enabling counts from the moment it is sent, disabling only once the back-end has
            // surely processed it: completions seen in between are then never blamed on a
            // disabled ring, whatever the sampling delay. A later event of the same vring (an
            // enable, say) flushes the held disable first, so the order stays the back-end's.
            if s.num != 0 { emitControl(e) } else {
                flushHeld(vq: vq)
                held.append(e)
            }
        case .setStatus:
            guard let s = m.decode(StatusPayload.self) else { return short(m) }
            emitControl(.control(.setStatus, value: UInt64(s.status), t: t))
        case .setBackendReqFd:
            emitControl(.control(.setBackendReqFd, t: t))
        default:
            break
        }
    }

    private func setMemTable(_ m: Message, t: UInt64) {
        // What the rings published under the old table belongs before it.
        pollRings()
        guard let table = m.decode(MemoryTablePayload.self) else {
            // A table that cannot be read is forwarded, not recorded (like any too-short payload):
            // what the back-end made of it is unknown. Its rings are not followed.
            memory.clear()
            let announced = m.payload.count >= 4 ? m.payload.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } : 0
            note("set-mem-table", "record: SET_MEM_TABLE payload is malformed (\(announced) regions in \(m.payload.count) bytes); forwarded, not recorded, rings are not followed")
            memoryChanged()
            return
        }
        do { try memory.replace(with: table.regions, fds: m.fds) } catch {
            note("set-mem-table", "record: SET_MEM_TABLE: \(error); forwarded, rings in it are not followed")
        }
        emitControl(.control(.setMemTable, value: UInt64(table.regions.count), t: t))
        // The regions as the front-end declared them: the checker places every ring inside them.
        for (k, d) in table.regions.enumerated() {
            emitControl(TraceEvent(.memRegion, aux: UInt16(k), timestamp: t, p0: d.guestAddr, p1: d.size, p2: d.userAddr))
        }
        memoryChanged()
    }

    private func memoryChanged() {
        if let ip = interposer {
            scratch.removeAll(keepingCapacity: true)
            ip.memoryChanged(rings, memory: memory, t: now, out: &scratch)
            write(scratch)
            return
        }
        for i in rings.indices {
            scratch.removeAll(keepingCapacity: true)
            rings[at: i].memoryChanged(memory, t: now, out: &scratch)
            write(scratch)
            logNewProblem(rings[at: i].vq)
        }
    }

    func observeReply(_ m: Message) {
        // Any reply means the back-end has processed every earlier request (it handles them in order).
        flushHeld(poll: true)
        let id = m.header.request
        guard m.isReply, let due = outstanding[id], due > 0 else {
            note("unsolicited-reply", "record: the back-end sent \(m.name) (flags 0x\(String(m.header.flags.rawValue, radix: 16))) that answers no request; forwarded, not recorded")
            return
        }
        outstanding[id] = due - 1
        let t = now
        switch m.request {
        case .getFeatures?, .getProtocolFeatures?:
            // The offer as the front-end receives it (through --interpose, without what the relay
            // cannot carry): what its SET_FEATURES / SET_PROTOCOL_FEATURES answer is judged against.
            guard let shown = (interposer?.rewriteReply(m) ?? m).decode(U64Payload.self) else { return }
            emitControl(.control(m.request == .getFeatures ? .getFeatures : .getProtocolFeatures, value: shown.value, t: t))
        case .getQueueNum?:
            if let n = m.decode(U64Payload.self) { emitControl(.control(.getQueueNum, value: n.value & 0xffff, t: t)) }
        case .getVringBase?:
            guard !awaitingVringBase.isEmpty, let s = m.decode(VringState.self) else { return }
            let vq = awaitingVringBase.removeFirst()
            // Everything the device published before it stopped is recorded before the stop.
            pollRing(vq)
            if rings.contains(vq) { rings[vq].stop() }
            interposer?.stop(vq)
            emitControl(.control(.getVringBase, vq: vq, value: UInt64(s.num & 0xffff), t: t))
        case .getStatus?:
            if let s = m.decode(StatusPayload.self) { emitControl(.control(.getStatus, value: UInt64(s.status), t: t)) }
        default:
            // A REPLY_ACK answer to a request sent with NEED_REPLY: non-zero means the back-end refused it.
            if let v = m.decode(U64Payload.self), v.value != 0, m.request?.alwaysReplies(protocolFeatures: protocolFeatures) != true {
                note("refused", "record: the back-end refused \(m.name) (REPLY_ACK \(v.value)); the trace records it as sent")
            }
        }
    }

    /// Starts following a ring once the message that starts it has gone to the back-end.
    func afterForward(_ m: Message) {
        guard m.request == .setVringKick, let f = m.decode(VringFile.self), Int(f.index) < header.queueCount,
              rings.contains(UInt16(f.index)) else { return }
        let vq = UInt16(f.index)
        flushHeld(vq: vq)
        scratch.removeAll(keepingCapacity: true)
        if let ip = interposer {
            ip.start(vq, config: rings[vq].config, memory: memory, features: features, t: now, out: &scratch)
            write(scratch)
            return
        }
        rings[vq].start(memory: memory, packed: features & FeatureBit.ringPacked.mask != 0, inOrder: features & FeatureBit.inOrder.mask != 0, t: now, out: &scratch)
        write(scratch)
        logNewProblem(vq)
    }

    // MARK: notifications

    /// SET_VRING_KICK/CALL with an eventfd: the back-end gets a fresh eventfd of the recorder's.
    func interpose(_ m: Message) -> Message {
        guard m.request == .setVringKick || m.request == .setVringCall, m.fds.count == 1,
              let f = m.decode(VringFile.self), !f.noFd, Int(f.index) < header.queueCount else { return m }
        let vq = UInt16(f.index)
        let kick = m.request == .setVringKick
        // Replace an earlier relay of the same kind on this vq.
        relays.removeAll { r in
            guard r.vq == vq && r.kick == kick else { return false }
            r.close(); return true
        }
        let (relay, why) = NotificationRelay.make(vq: vq, kick: kick, peerFd: m.fds[0])
        guard let relay else {
            if let why { note("not-relayed", "record: \(why)") }
            return m
        }
        relays.append(relay)
        var out = m
        out.fds = [relay.backendFd]
        return out
    }

    func serviceRelays(_ ready: [Bool]) {
        for i in relays.indices where i < ready.count && ready[i] {
            let got = relays[i].service()
            guard got > 0 else { continue }
            let vq = relays[i].vq
            // Only rings being followed: a notification outside that window is relayed but not
            // recorded, since the trace could not place it against the ring's state.
            guard rings.isPolled(vq) else { continue }
            if relays[i].kick { pollRing(vq) }   // the exposure the kick announces comes first
            write([TraceEvent(relays[i].kick ? .kick : .interrupt, vq: vq, timestamp: now)])
        }
    }

    func closeRelays() {
        for r in relays { r.close() }
        relays = []
    }
}
