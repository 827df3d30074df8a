import Drive

/// The hostile peers' guest memory is `drive`'s guest region, unsealed: truncating it under the
/// peer's mapping is one of the attacks.
public typealias GuestMemory = GuestRegion

extension GuestRegion {
    /// An unsealed region for tests (a memfd that cannot be created here is a broken machine).
    public convenience init(size: Int) {
        try! self.init(size: size, sealed: false)
    }
}
