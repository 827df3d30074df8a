import CSupport
import Glibc

/// Unix-socket endpoints for vhost-user: a listening socket that accepts within a bound, and a
/// connect that retries within a bound (a back-end that restarts takes a while to listen again).
public final class Listener {
    public let path: String
    public let fd: Int32

    /// Creates the socket file (replacing a stale socket left at `path`, never another kind of file).
    public init(path: String) throws(VhostUserError) {
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        let s = cs_unix_listen(path)
        guard s >= 0 else { throw .io("cannot listen on \(path): \(String(cString: strerror(errno)))") }
        _ = cs_set_nonblocking(s)
        self.path = path; fd = s
    }

    deinit { close(fd); unlink(path) }

    /// The next connection, or `.timedOut`/`.stopped` when the bound ends first.
    public func accept(within bound: IOBound) throws(VhostUserError) -> Channel {
        while true {
            let c = cs_accept_nb(fd)
            if c >= 0 { return Channel(adopting: c) }
            let e = errno
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED else {
                throw .io("accept on \(path) failed: \(String(cString: strerror(e)))")
            }
            guard let slice = bound.nextSlice() else { throw bound.expired("no connection on \(path)") }
            _ = cs_poll_one(fd, Int32(POLLIN), slice)
        }
    }
}

public enum Connector {
    /// Connects to the socket at `path`, retrying every `interval` seconds while it is absent or
    /// refuses (ENOENT, ECONNREFUSED, EAGAIN) until the bound ends. Other errors end at once.
    public static func connect(_ path: String, within bound: IOBound, interval: Double = 0.1) throws(VhostUserError) -> Channel {
        var last = ""
        while true {
            let s = cs_unix_connect_nb(path)
            if s >= 0 { return Channel(adopting: s) }
            let e = errno
            last = String(cString: strerror(e))
            guard e == ENOENT || e == ECONNREFUSED || e == EAGAIN else {
                throw .io("cannot connect to \(path): \(last)")
            }
            let until = IOBound.now &+ UInt64(interval * 1e9)
            while let slice = bound.nextSlice(), IOBound.now < until { usleep(UInt32(min(slice, 20_000_000) / 1000)) }
            guard bound.nextSlice() != nil else { throw bound.expired("cannot connect to \(path): \(last)") }
        }
    }
}
