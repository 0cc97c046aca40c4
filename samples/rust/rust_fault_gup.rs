// SPDX-License-Identifier: GPL-2.0

//! Rust GUP sample: a misc device, `/dev/fault_gup`, whose ioctls run the GUP, pin and fault-in
//! wrappers of `kernel::mm` on user memory, so that user space (the fault-retry conformance
//! tests) can drive them against userfaultfd memory and bad input.
//!
//! The ioctls take a `struct fr_gup_req` (all fields 64-bit):
//!
//! - `FR_GUP_PIN`: `pin_user_pages_unlocked()` on `nr_pages` pages from `addr` of the calling
//!   process; returns in `checksum` the FNV-1a hash of their bytes, in `done` the count.
//! - `FR_GUP_PIN_REMOTE`: the same on the address space of process `pid`, through
//!   `pin_user_pages_remote()` with the "locked" state (or `get_user_pages_remote()` with
//!   `FR_GUP_GET`). The caller needs ptrace access to `pid` (`EPERM`), which must be a
//!   process with an address space (`ESRCH`).
//! - `FR_GUP_FAULTIN`: `fixup_user_fault()` for write on each page of the range, under the
//!   mmap read lock of the calling process; `done` counts the pages for which the lock was
//!   released and taken again. With `FR_GUP_INTERRUPTIBLE` the fault is
//!   `FAULT_FLAG_INTERRUPTIBLE`.
//! - `FR_GUP_PINS`: how many pins the device holds now (always 0 between calls).
//! - `FR_GUP_FAULT`: `handle_mm_fault()` on each page of the range of the calling process, for
//!   write with `FR_GUP_WRITE`: a fault loop of its own, in safe Rust. The first attempt takes
//!   the per-VMA lock if it can, every other the mmap read lock; a fault that released the lock
//!   is retried, without bound. `done` counts the retries. A fatal signal (and with
//!   `FR_GUP_INTERRUPTIBLE` any signal) ends it with `EINTR`; an access that the mapping does
//!   not allow, or no mapping, with `EFAULT`. Two flags exist to show what `kernel::mm`
//!   refuses: `FR_GUP_USER` (16) asks for `FAULT_FLAG_USER`, which only the arch fault
//!   handler may set (`EINVAL`); `FR_GUP_NORETRY` (32) leaves out `FAULT_FLAG_ALLOW_RETRY`,
//!   which a userfaultfd range needs (`EINVAL` there).
//!
//! `flags`: `FR_GUP_WRITE` (1) asks for write access, `FR_GUP_INTERRUPTIBLE` (2) lets a
//! non-fatal signal interrupt a wait (`EINTR`), `FR_GUP_GET` (4) takes references instead of
//! pins (remote only), `FR_GUP_LONGTERM` (8) asks for a long-term pin (`FOLL_LONGTERM`, pins
//! only; with `FR_GUP_GET`: `EINVAL`). A bit that the command does not take: `EINVAL`.
//!
//! 32-bit processes on a 64-bit kernel use the same commands: the structure has the same
//! layout there.
//!
//! `rust_fault_gup.h` is this ABI in C, for user space; the build checks that the two agree.

use core::sync::atomic::{AtomicI64, Ordering};
use kernel::{
    c_str,
    ioctl::{_IOR, _IOWR},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::{
        fault::{fault_signal_pending, FaultFlag, FaultFlags, FaultOutcome, LockedVma},
        gup::{self, GupFlag, GupFlags, Pages, Relock},
        MmWithUser, PtraceMode,
    },
    page::PAGE_SIZE,
    prelude::*,
    task::Task,
    types::{ARef, AsBytes, FromBytes},
    uaccess::UserSlice,
};

module! {
    type: RustFaultGup,
    name: "rust_fault_gup",
    author: "Rust for Linux Contributors",
    description: "Rust GUP and fault-in sample",
    license: "GPL",
}

const FR_GUP_MAGIC: u32 = b'f' as u32;
const FR_GUP_PIN: u32 = _IOWR::<Req>(FR_GUP_MAGIC, 1);
const FR_GUP_PIN_REMOTE: u32 = _IOWR::<Req>(FR_GUP_MAGIC, 2);
const FR_GUP_FAULTIN: u32 = _IOWR::<Req>(FR_GUP_MAGIC, 3);
const FR_GUP_PINS: u32 = _IOR::<i64>(FR_GUP_MAGIC, 4);
const FR_GUP_FAULT: u32 = _IOWR::<Req>(FR_GUP_MAGIC, 5);

const FR_GUP_WRITE: u64 = 1;
const FR_GUP_INTERRUPTIBLE: u64 = 2;
const FR_GUP_GET: u64 = 4;
const FR_GUP_LONGTERM: u64 = 8;
const FR_GUP_USER: u64 = 16;
const FR_GUP_NORETRY: u64 = 32;

/// The flags each command takes; others are refused with `EINVAL`.
const fn allowed_flags(cmd: u32) -> u64 {
    match cmd {
        FR_GUP_PIN => FR_GUP_WRITE | FR_GUP_INTERRUPTIBLE | FR_GUP_LONGTERM,
        FR_GUP_PIN_REMOTE => FR_GUP_WRITE | FR_GUP_INTERRUPTIBLE | FR_GUP_GET | FR_GUP_LONGTERM,
        FR_GUP_FAULTIN => FR_GUP_WRITE | FR_GUP_INTERRUPTIBLE,
        FR_GUP_FAULT => FR_GUP_WRITE | FR_GUP_INTERRUPTIBLE | FR_GUP_USER | FR_GUP_NORETRY,
        _ => 0,
    }
}

/// `struct fr_gup_req` of `rust_fault_gup.h`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Req {
    addr: u64,
    nr_pages: u64,
    flags: u64,
    pid: i64,
    checksum: u64,
    done: u64,
}

/// The ABI of `rust_fault_gup.h`, the header that user space includes, as Kbuild extracts it
/// (`rust_fault_gup_abi.c`).
mod abi {
    include!(env!("RUST_FAULT_GUP_ABI"));
}

// The definitions above are the header's: the build fails where they differ. The ioctl numbers
// are compared as `u32`, since a 32-bit target prints the larger ones as negative numbers.
const _: () = {
    assert!(FR_GUP_PIN == abi::FR_GUP_PIN as u32);
    assert!(FR_GUP_PIN_REMOTE == abi::FR_GUP_PIN_REMOTE as u32);
    assert!(FR_GUP_FAULTIN == abi::FR_GUP_FAULTIN as u32);
    assert!(FR_GUP_PINS == abi::FR_GUP_PINS as u32);
    assert!(FR_GUP_FAULT == abi::FR_GUP_FAULT as u32);
    assert!(FR_GUP_WRITE == abi::FR_GUP_WRITE as u64);
    assert!(FR_GUP_INTERRUPTIBLE == abi::FR_GUP_INTERRUPTIBLE as u64);
    assert!(FR_GUP_GET == abi::FR_GUP_GET as u64);
    assert!(FR_GUP_LONGTERM == abi::FR_GUP_LONGTERM as u64);
    assert!(FR_GUP_USER == abi::FR_GUP_USER as u64);
    assert!(FR_GUP_NORETRY == abi::FR_GUP_NORETRY as u64);
    assert!(gup::MAX_PAGES == abi::FR_GUP_MAX_PAGES as usize);
    assert!(core::mem::size_of::<Req>() == abi::FR_GUP_REQ_SIZE as usize);
    assert!(core::mem::offset_of!(Req, addr) == abi::FR_GUP_REQ_ADDR as usize);
    assert!(core::mem::offset_of!(Req, nr_pages) == abi::FR_GUP_REQ_NR_PAGES as usize);
    assert!(core::mem::offset_of!(Req, flags) == abi::FR_GUP_REQ_FLAGS as usize);
    assert!(core::mem::offset_of!(Req, pid) == abi::FR_GUP_REQ_PID as usize);
    assert!(core::mem::offset_of!(Req, checksum) == abi::FR_GUP_REQ_CHECKSUM as usize);
    assert!(core::mem::offset_of!(Req, done) == abi::FR_GUP_REQ_DONE as usize);
};

// SAFETY: `Req` is plain integers, with no padding; any bit pattern is valid.
unsafe impl FromBytes for Req {}
// SAFETY: `Req` is plain integers, with no padding.
unsafe impl AsBytes for Req {}

/// Pins the device holds at this moment.
static PINS: AtomicI64 = AtomicI64::new(0);

struct RustFaultGup {
    _dev: Pin<KBox<MiscDeviceRegistration<FaultGupFile>>>,
}

impl kernel::Module for RustFaultGup {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let opts = MiscDeviceOptions {
            name: c_str!("fault_gup"),
        };
        Ok(Self {
            _dev: KBox::pin_init(MiscDeviceRegistration::register(opts, module), GFP_KERNEL)?,
        })
    }
}

struct FaultGupFile;

#[vtable]
impl MiscDevice for FaultGupFile {
    type Ptr = KBox<Self>;

    fn open() -> Result<KBox<Self>> {
        Ok(KBox::new(FaultGupFile, GFP_KERNEL)?)
    }

    fn ioctl(_me: &FaultGupFile, cmd: u32, arg: usize) -> Result<isize> {
        let size = match cmd {
            FR_GUP_PINS => core::mem::size_of::<i64>(),
            FR_GUP_PIN | FR_GUP_PIN_REMOTE | FR_GUP_FAULTIN | FR_GUP_FAULT => {
                core::mem::size_of::<Req>()
            }
            _ => return Err(ENOTTY),
        };
        let (mut reader, mut writer) = UserSlice::new(arg as _, size).reader_writer();
        if cmd == FR_GUP_PINS {
            writer.write(&PINS.load(Ordering::Relaxed))?;
            return Ok(0);
        }
        let mut req: Req = reader.read()?;
        if req.flags & !allowed_flags(cmd) != 0 {
            return Err(EINVAL);
        }
        let addr = usize::try_from(req.addr).map_err(|_| EOVERFLOW)?;
        let nr_pages = usize::try_from(req.nr_pages).map_err(|_| EINVAL)?;
        match cmd {
            FR_GUP_PIN => {
                let pages = gup::pin_user_pages_unlocked(addr, nr_pages, gup_flags(req.flags))?;
                report(&mut req, pages)?;
            }
            FR_GUP_PIN_REMOTE => pin_remote(&mut req, addr, nr_pages)?,
            FR_GUP_FAULTIN => faultin(&mut req, addr, nr_pages)?,
            _ => fault(&mut req, addr, nr_pages)?,
        }
        writer.write(&req)?;
        Ok(0)
    }
}

fn gup_flags(flags: u64) -> GupFlags {
    let mut f = GupFlags::empty();
    if flags & FR_GUP_WRITE != 0 {
        f = f.with(GupFlag::Write);
    }
    if flags & FR_GUP_INTERRUPTIBLE != 0 {
        f = f.with(GupFlag::Interruptible);
    }
    if flags & FR_GUP_LONGTERM != 0 {
        f = f.with(GupFlag::Longterm);
    }
    f
}

/// Hashes the pages into `req.checksum`, sets `req.done`, and drops the pins.
fn report(req: &mut Req, pages: Pages) -> Result {
    let n = pages.len() as i64;
    let pinned = pages.is_pinned();
    if pinned {
        PINS.fetch_add(n, Ordering::Relaxed);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = [0u8; 256];
    let mut res = Ok(());
    'pages: for i in 0..pages.len() {
        for offset in (0..PAGE_SIZE).step_by(buf.len()) {
            // User space may write to the page meanwhile: the copy sees what it sees.
            res = pages.read(i, offset, &mut buf);
            if res.is_err() {
                break 'pages;
            }
            for &b in &buf {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    req.checksum = hash;
    req.done = pages.len() as u64;
    drop(pages);
    if pinned {
        PINS.fetch_sub(n, Ordering::Relaxed);
    }
    res
}

/// The address space of process `pid`, if the caller may ptrace it (as `process_vm_readv()`).
fn remote_mm(pid: i64) -> Result<ARef<MmWithUser>> {
    let pid = i32::try_from(pid).map_err(|_| ESRCH)?;
    if pid <= 0 {
        return Err(ESRCH);
    }
    let task = Task::find_get_by_vpid(pid).ok_or(ESRCH)?;
    MmWithUser::access(&task, PtraceMode::AttachRealCreds).map_err(|e| {
        if e == EACCES {
            EPERM
        } else {
            e
        }
    })
}

fn pin_remote(req: &mut Req, addr: usize, nr_pages: usize) -> Result {
    let mm = remote_mm(req.pid)?;
    let guard = mm.mmap_read_lock_killable()?;
    let res = if req.flags & FR_GUP_GET != 0 {
        gup::get_user_pages_remote(guard, addr, nr_pages, gup_flags(req.flags))
    } else {
        gup::pin_user_pages_remote(guard, addr, nr_pages, gup_flags(req.flags))
    };
    // Release the lock (if GUP kept it) before looking at the pages.
    drop(res.lock);
    report(req, res.pages?)
}

fn faultin(req: &mut Req, addr: usize, nr_pages: usize) -> Result {
    gup::check_range(addr, nr_pages)?;
    let mut flags = FaultFlags::empty().with(FaultFlag::Write)?;
    if req.flags & FR_GUP_INTERRUPTIBLE != 0 {
        flags = flags.with(FaultFlag::Interruptible)?;
    }
    let retaken = MmWithUser::with_current(|mm| -> Result<u64> {
        let mut guard = mm.mmap_read_lock_killable()?;
        let mut retaken = 0;
        for i in 0..nr_pages {
            if gup::fixup_user_fault(&mut guard, addr + i * PAGE_SIZE, flags)? == Relock::Retaken {
                retaken += 1;
            }
        }
        Ok(retaken)
    })
    .ok_or(EFAULT)??;
    req.done = retaken;
    Ok(())
}

fn fault(req: &mut Req, addr: usize, nr_pages: usize) -> Result {
    gup::check_range(addr, nr_pages)?;
    let interruptible = req.flags & FR_GUP_INTERRUPTIBLE != 0;
    let mut flags = FaultFlags::DEFAULT;
    if !interruptible {
        flags = flags.without(FaultFlag::Interruptible)?;
    }
    if req.flags & FR_GUP_WRITE != 0 {
        flags = flags.with(FaultFlag::Write)?;
    }
    if req.flags & FR_GUP_USER != 0 {
        flags = flags.with(FaultFlag::User)?;
    }
    if req.flags & FR_GUP_NORETRY != 0 {
        flags = flags.without(FaultFlag::AllowRetry)?;
    }
    let retries = MmWithUser::with_current(|mm| -> Result<u64> {
        let mut retries = 0;
        for i in 0..nr_pages {
            retries += fault_page(mm, addr + i * PAGE_SIZE, flags, interruptible)?;
        }
        Ok(retries)
    })
    .ok_or(EFAULT)??;
    req.done = retries;
    Ok(())
}

/// Handles the fault at `address` until it is resolved; returns how many times it was retried.
fn fault_page(
    mm: &MmWithUser,
    address: usize,
    mut flags: FaultFlags,
    interruptible: bool,
) -> Result<u64> {
    let mut retries = 0;
    loop {
        // The per-VMA lock only for the first attempt, as the arch fault handlers do: a fault
        // that needs the mmap lock (to prepare an anon_vma, say) retries under the VMA lock
        // without waiting.
        let vma_lock = if retries == 0 {
            mm.lock_vma_under_rcu(address)
        } else {
            None
        };
        let lock = match vma_lock {
            Some(guard) => LockedVma::from_vma_guard(guard),
            None => {
                let guard = mm.mmap_read_lock_killable()?;
                // No VMA: the guard comes back in the error and is dropped.
                LockedVma::lookup(guard, address).map_err(|_| EFAULT)?
            }
        };
        let under_vma_lock = lock.is_vma_lock();
        let result = match lock.handle_mm_fault(address, flags, None) {
            // Refused (an access the VMA does not allow): the lock is dropped with it.
            Err(refused) => return Err(refused.error),
            Ok(FaultOutcome::Locked(lock, result)) => {
                drop(lock);
                return result.to_errno().map_or(Ok(retries), Err);
            }
            Ok(FaultOutcome::Released(result)) => result,
        };
        if fault_signal_pending(result, interruptible) {
            return Err(EINTR);
        }
        if result.is_completed() {
            return Ok(retries);
        }
        if !under_vma_lock || result.is_major() {
            flags = flags.tried();
        }
        retries += 1;
    }
}
