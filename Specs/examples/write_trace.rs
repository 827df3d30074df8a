// The trace of write_trace.c, written from Rust through conformance_trace.h's C ABI (byte for byte the
// same file; the tests compare them).
//
//   cc -c -x c -DCONFORMANCE_TRACE_IMPLEMENTATION conformance_trace.h -o ct.o && ar rcs libconformance_trace.a ct.o
//   rustc --edition 2021 write_trace.rs -L . -l static=conformance_trace -o write_trace_rs
//   ./write_trace_rs out.trace && conformance check out.trace
//
// In a cargo project, build the implementation with the `cc` crate from a .c file holding
// `#define CONFORMANCE_TRACE_IMPLEMENTATION` and `#include "conformance_trace.h"`.
use std::ffi::{c_char, c_int, c_void, CString};

/// `ct_writer`, field for field (repr(C) keeps the C layout).
#[repr(C)]
pub struct CtWriter {
    f: *mut c_void,
    nqueues: u16,
    error: c_int,
    events: u64,
}

const CT_VHOST_USER: c_int = 4;
const CT_LAYOUT_MQ: c_int = 1;
const CT_HDR_PRESET: u16 = 2;
const CT_DESC_WRITE: u16 = 2;

extern "C" {
    fn ct_open(w: *mut CtWriter, path: *const c_char, profile: c_int, layout: c_int, flags: u16, features: u64,
               workers: u16, nqueues: u16, sizes: *const u16) -> c_int;
    fn ct_close(w: *mut CtWriter) -> c_int;
    fn ct_desc(w: *mut CtWriter, vq: u16, idx: u16, addr: u64, len: u32, flags: u16, next: u16, ts: u64) -> c_int;
    fn ct_avail_entry(w: *mut CtWriter, vq: u16, pos: u16, head: u16, ts: u64) -> c_int;
    fn ct_avail_idx(w: *mut CtWriter, vq: u16, idx: u16, ts: u64) -> c_int;
    fn ct_kick(w: *mut CtWriter, vq: u16, ts: u64) -> c_int;
    fn ct_service_begin(w: *mut CtWriter, vq: u16, worker: u16, ts: u64) -> c_int;
    fn ct_service_end(w: *mut CtWriter, vq: u16, worker: u16, ts: u64) -> c_int;
    fn ct_avail_read(w: *mut CtWriter, vq: u16, worker: u16, pos: u16, head: u16, ts: u64) -> c_int;
    fn ct_used_entry(w: *mut CtWriter, vq: u16, worker: u16, pos: u16, id: u32, len: u32, ts: u64) -> c_int;
    fn ct_used_idx(w: *mut CtWriter, vq: u16, worker: u16, idx: u16, ts: u64) -> c_int;
    fn ct_interrupt(w: *mut CtWriter, vq: u16, worker: u16, ts: u64) -> c_int;
}

struct Clock(u64);
impl Clock {
    fn t(&mut self) -> u64 { self.0 += 10; self.0 }
}

/// One buffer through one vq, as in write_trace.c.
unsafe fn buffer(w: *mut CtWriter, c: &mut Clock, vq: u16, desc: u16, pos: u16, len: u32, writable: bool, worker: u16) {
    ct_desc(w, vq, desc, 0x100000 + desc as u64 * 0x1000, len, if writable { CT_DESC_WRITE } else { 0 }, 0, c.t());
    ct_avail_entry(w, vq, pos, desc, c.t());
    ct_avail_idx(w, vq, pos + 1, c.t());
    ct_kick(w, vq, c.t());
    ct_service_begin(w, vq, worker, c.t());
    ct_avail_read(w, vq, worker, pos, desc, c.t());
    ct_used_entry(w, vq, worker, pos, desc as u32, if writable { len } else { 0 }, c.t());
    ct_used_idx(w, vq, worker, pos + 1, c.t());
    ct_interrupt(w, vq, worker, c.t());
    ct_service_end(w, vq, worker, c.t());
}

fn main() {
    let path = match std::env::args().nth(1) {
        Some(p) => p,
        None => { eprintln!("usage: write_trace_rs OUT.trace"); std::process::exit(2) }
    };
    let cpath = CString::new(path).expect("path without NUL");
    let sizes: [u16; 2] = [8, 8];
    let mut w = CtWriter { f: std::ptr::null_mut(), nqueues: 0, error: 0, events: 0 };
    let mut c = Clock(1000);
    unsafe {
        if ct_open(&mut w, cpath.as_ptr(), CT_VHOST_USER, CT_LAYOUT_MQ, CT_HDR_PRESET, 1u64 << 32, 0, 2, sizes.as_ptr()) != 0 {
            eprintln!("cannot write the trace");
            std::process::exit(2);
        }
        for i in 0..3u16 { buffer(&mut w, &mut c, 1, i, i, 1514, false, 7); }
        for i in 0..2u16 { buffer(&mut w, &mut c, 0, i, i, 2048, true, 8); }
        std::process::exit(if ct_close(&mut w) == 0 { 0 } else { 2 });
    }
}
