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
//!
//! `flags`: `FR_GUP_WRITE` (1) asks for write access, `FR_GUP_INTERRUPTIBLE` (2) lets a
//! non-fatal signal interrupt a wait (`EINTR`), `FR_GUP_GET` (4) takes references instead of
//! pins (remote only). Other bits: `EINVAL`.

use core::sync::atomic::{AtomicI64, Ordering};
use kernel::{
    bindings, c_str,
    ioctl::{_IOR, _IOWR},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::{
        fault::{FaultFlag, FaultFlags},
        gup::{self, GupFlag, GupFlags, Pages, Relock},
        MmWithUser,
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

const FR_GUP_WRITE: u64 = 1;
const FR_GUP_INTERRUPTIBLE: u64 = 2;
const FR_GUP_GET: u64 = 4;

/// `struct fr_gup_req`.
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
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let opts = MiscDeviceOptions {
            name: c_str!("fault_gup"),
        };
        Ok(Self {
            _dev: KBox::pin_init(MiscDeviceRegistration::register(opts), GFP_KERNEL)?,
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
            FR_GUP_PIN | FR_GUP_PIN_REMOTE | FR_GUP_FAULTIN => core::mem::size_of::<Req>(),
            _ => return Err(ENOTTY),
        };
        let (mut reader, mut writer) = UserSlice::new(arg as _, size).reader_writer();
        if cmd == FR_GUP_PINS {
            writer.write(&PINS.load(Ordering::Relaxed))?;
            return Ok(0);
        }
        let mut req: Req = reader.read()?;
        if req.flags & !(FR_GUP_WRITE | FR_GUP_INTERRUPTIBLE | FR_GUP_GET) != 0 {
            return Err(EINVAL);
        }
        let addr = usize::try_from(req.addr).map_err(|_| EOVERFLOW)?;
        let nr_pages = usize::try_from(req.nr_pages).map_err(|_| EINVAL)?;
        match cmd {
            FR_GUP_PIN => {
                if req.flags & FR_GUP_GET != 0 {
                    return Err(EINVAL);
                }
                let pages = gup::pin_user_pages_unlocked(addr, nr_pages, gup_flags(req.flags))?;
                report(&mut req, pages);
            }
            FR_GUP_PIN_REMOTE => pin_remote(&mut req, addr, nr_pages)?,
            _ => faultin(&mut req, addr, nr_pages)?,
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
    f
}

/// Hashes the pages into `req.checksum`, sets `req.done`, and drops the pins.
fn report(req: &mut Req, pages: Pages) {
    let n = pages.len() as i64;
    if pages.is_pinned() {
        PINS.fetch_add(n, Ordering::Relaxed);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..pages.len() {
        pages.with_page(i, |bytes| {
            for &b in &bytes[..PAGE_SIZE] {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        });
    }
    req.checksum = hash;
    req.done = pages.len() as u64;
    let pinned = pages.is_pinned();
    drop(pages);
    if pinned {
        PINS.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The address space of process `pid`, if the caller may ptrace it (as `process_vm_readv()`).
fn remote_mm(pid: i64) -> Result<ARef<MmWithUser>> {
    let pid = bindings::pid_t::try_from(pid).map_err(|_| ESRCH)?;
    if pid <= 0 {
        return Err(ESRCH);
    }
    // SAFETY: Any pid number may be looked up; a task comes back with a reference.
    let task = unsafe { bindings::find_get_task_by_vpid(pid) };
    let task = core::ptr::NonNull::new(task.cast::<Task>()).ok_or(ESRCH)?;
    // SAFETY: `find_get_task_by_vpid` took a reference, which the `ARef` now owns.
    let task: ARef<Task> = unsafe { ARef::from_raw(task) };
    // SAFETY: The task is valid (we hold a reference).
    let mm = unsafe {
        bindings::mm_access(
            (&*task as *const Task).cast_mut().cast(),
            bindings::PTRACE_MODE_ATTACH_REALCREDS,
        )
    };
    // `mm_access` returns an `ERR_PTR`, NULL, or an mm with an `mmget` reference.
    let mm = kernel::error::from_err_ptr(mm).map_err(|e| if e == EACCES { EPERM } else { e })?;
    let mm = core::ptr::NonNull::new(mm).ok_or(ESRCH)?;
    // SAFETY: We own the `mmget` reference that `mm_access` took.
    Ok(unsafe { MmWithUser::from_raw_mmget(mm) })
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
    report(req, res.pages?);
    Ok(())
}

fn faultin(req: &mut Req, addr: usize, nr_pages: usize) -> Result {
    if req.flags & !(FR_GUP_WRITE | FR_GUP_INTERRUPTIBLE) != 0 {
        return Err(EINVAL);
    }
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
