/// A typed vhost-user payload: decoded from and encoded to the bytes after the header. Decoding
/// fails (nil) only when the payload is too short for the type or a count in it overruns it.
public protocol Payload: Sendable, Equatable {
    init?(decoding bytes: [UInt8])
    func encode() -> [UInt8]
}
