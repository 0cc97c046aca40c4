// SPDX-License-Identifier: GPL-2.0

//! Miscdevice support.
//!
//! A minimal abstraction after the design that Linux 6.13 adopted: a [`MiscDevice`] trait whose
//! `open` creates the per-file state, and a pinned [`MiscDeviceRegistration`] that registers
//! the device and deregisters it when dropped. `open` (after `generic_file_open()`), `release`,
//! `unlocked_ioctl` and `compat_ioctl` are offered; a device with `ioctl` but no
//! `compat_ioctl` gets `compat_ptr_ioctl()`, so that 32-bit processes reach the same handler
//! (the argument converted with `compat_ptr()`).
//!
//! C headers: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h).

use crate::{
    bindings,
    error::{to_result, VTABLE_DEFAULT_ERROR},
    prelude::*,
    types::{ForeignOwnable, Opaque},
};
use core::{marker::PhantomData, mem::MaybeUninit};

/// Options for creating a misc device.
#[derive(Copy, Clone)]
pub struct MiscDeviceOptions {
    /// The name of the miscdevice, and of its node in `/dev`.
    pub name: &'static CStr,
}

impl MiscDeviceOptions {
    /// Create a raw `struct miscdevice` ready for registration.
    pub const fn into_raw<T: MiscDevice>(self) -> bindings::miscdevice {
        // SAFETY: All zeros is valid for this C type.
        let mut result: bindings::miscdevice = unsafe { MaybeUninit::zeroed().assume_init() };
        result.minor = bindings::MISC_DYNAMIC_MINOR as _;
        result.name = self.name.as_char_ptr();
        result.fops = create_vtable::<T>();
        result
    }
}

/// A registration of a miscdevice.
///
/// Dropping it deregisters the device; that may sleep.
///
/// # Invariants
///
/// `inner` is a registered misc device.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub struct MiscDeviceRegistration<T> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    _t: PhantomData<T>,
}

// SAFETY: It is allowed to call `misc_deregister` on a different thread from where you called
// `misc_register`.
unsafe impl<T> Send for MiscDeviceRegistration<T> {}
// SAFETY: All `&self` methods on this type are written to ensure that it is safe to call them in
// parallel.
unsafe impl<T> Sync for MiscDeviceRegistration<T> {}

impl<T: MiscDevice> MiscDeviceRegistration<T> {
    /// Register a misc device, for `module`.
    ///
    /// The initialiser fails, and leaves nothing registered, if `misc_register()` fails
    /// (`EBUSY` for a minor in use, `EEXIST` for a name in use, which the driver core also logs
    /// with a stack dump), or with `EINVAL` for an empty name (which the driver core would warn
    /// about) or a loadable module: the file operations are static and have no owner, so
    /// nothing would keep such a module loaded while one of its device's files is open.
    /// May sleep.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration};
    /// use kernel::{bindings, c_str, prelude::*};
    /// use core::ptr::{null_mut, NonNull};
    ///
    /// struct Nothing;
    ///
    /// #[vtable]
    /// impl MiscDevice for Nothing {
    ///     type Ptr = KBox<Self>;
    ///
    ///     fn open() -> Result<KBox<Self>> {
    ///         Err(ENODEV)
    ///     }
    /// }
    ///
    /// // SAFETY: A null module is built-in code, which this example is.
    /// static BUILTIN: ThisModule = unsafe { ThisModule::from_ptr(null_mut()) };
    /// // SAFETY: The pointer is never used: the registration refuses loadable modules first.
    /// static LOADABLE: ThisModule =
    ///     unsafe { ThisModule::from_ptr(NonNull::<bindings::module>::dangling().as_ptr()) };
    ///
    /// type Reg = MiscDeviceRegistration<Nothing>;
    ///
    /// let empty = MiscDeviceOptions { name: c_str!("") };
    /// let r = KBox::pin_init(Reg::register(empty, &BUILTIN), GFP_KERNEL);
    /// assert_eq!(r.err(), Some(EINVAL));
    ///
    /// let named = MiscDeviceOptions { name: c_str!("rust_misc_doctest") };
    /// let r = KBox::pin_init(Reg::register(named, &LOADABLE), GFP_KERNEL);
    /// assert_eq!(r.err(), Some(EINVAL));
    ///
    /// // Built-in, with a name: registered, and deregistered when dropped.
    /// let r = KBox::pin_init(Reg::register(named, &BUILTIN), GFP_KERNEL);
    /// assert!(r.is_ok());
    /// ```
    pub fn register(
        opts: MiscDeviceOptions,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| -> Result {
            if opts.name.is_empty() || !module.as_ptr().is_null() {
                return Err(EINVAL);
            }
            // SAFETY: `slot` points at the (pinned, uninitialised) memory of a `Self`; the
            // place is only named, not read, and no reference to it is made.
            let inner = Opaque::raw_get(unsafe { core::ptr::addr_of!((*slot).inner) });
            // SAFETY: `inner` is valid for writes, and holds nothing that would need a drop.
            unsafe { inner.write(opts.into_raw::<T>()) };
            // INVARIANT: If this returns `Ok(())`, `slot` holds a registered misc device.
            // SAFETY: The `miscdevice` was just written. It is deregistered before its memory
            // goes away, because the memory is pinned and the destructor of `Self` deregisters
            // it.
            to_result(unsafe { bindings::misc_register(inner) })
        };
        // SAFETY: On `Ok`, the closure has initialised every field of `Self` (`_t` has no
        // data); on `Err`, `misc_register()` failed and there is nothing to drop or undo.
        unsafe { crate::init::pin_init_from_closure(init) }
    }

    /// Returns a raw pointer to the misc device.
    pub fn as_raw(&self) -> *mut bindings::miscdevice {
        self.inner.get()
    }
}

#[pinned_drop]
impl<T> PinnedDrop for MiscDeviceRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: We know that the device is registered by the type invariants.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// Trait implemented by the private data of an open misc device.
#[vtable]
pub trait MiscDevice {
    /// What kind of pointer should `Self` be wrapped in.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Called when the misc device is opened.
    ///
    /// The returned pointer will be stored as the private data for the file. It runs with the
    /// misc device list's mutex held: it must not register or deregister a misc device.
    fn open() -> Result<Self::Ptr>;

    /// Called when the misc device is released.
    fn release(device: Self::Ptr) {
        drop(device);
    }

    /// Handler for ioctls.
    ///
    /// The `cmd` argument is usually manipulated using the utilities in [`kernel::ioctl`].
    ///
    /// [`kernel::ioctl`]: mod@crate::ioctl
    fn ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }

    /// Handler for ioctls of 32-bit processes on a 64-bit kernel (`CONFIG_COMPAT`).
    ///
    /// Without it, a device that has [`MiscDevice::ioctl`] gets `compat_ptr_ioctl()`: the
    /// same handler, with `arg` converted as a user pointer. Implement this for commands whose
    /// argument is not a pointer, or whose structures differ between 32 and 64 bits.
    fn compat_ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        kernel::build_error(VTABLE_DEFAULT_ERROR)
    }
}

const fn create_vtable<T: MiscDevice>() -> &'static bindings::file_operations {
    const fn maybe_fn<T: Copy>(check: bool, func: T) -> Option<T> {
        if check {
            Some(func)
        } else {
            None
        }
    }

    struct VtableHelper<T: MiscDevice> {
        _t: PhantomData<T>,
    }
    impl<T: MiscDevice> VtableHelper<T> {
        const VTABLE: bindings::file_operations = bindings::file_operations {
            open: Some(fops_open::<T>),
            release: Some(fops_release::<T>),
            unlocked_ioctl: maybe_fn(T::HAS_IOCTL, fops_ioctl::<T>),
            // Without `CONFIG_COMPAT` there are no 32-bit processes to serve.
            #[cfg(CONFIG_COMPAT)]
            compat_ioctl: if T::HAS_COMPAT_IOCTL {
                Some(fops_compat_ioctl::<T>)
            } else if T::HAS_IOCTL {
                Some(bindings::compat_ptr_ioctl)
            } else {
                None
            },
            // SAFETY: All zeros is a valid value for `bindings::file_operations`.
            ..unsafe { MaybeUninit::zeroed().assume_init() }
        };
    }

    &VtableHelper::<T>::VTABLE
}

/// # Safety
///
/// `file` and `inode` must be the file and inode for a file that is undergoing initialization.
/// The file must be associated with a `MiscDeviceRegistration<T>`.
unsafe extern "C" fn fops_open<T: MiscDevice>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> crate::ffi::c_int {
    // SAFETY: The caller passes the inode and the file of an open in progress.
    let ret = unsafe { bindings::generic_file_open(inode, file) };
    if ret != 0 {
        return ret;
    }

    let ptr = match T::open() {
        Ok(ptr) => ptr,
        Err(err) => return err.to_errno(),
    };

    let private = ptr.into_foreign().cast_mut();
    // SAFETY: The open call of a file owns the private data; `fops_release` takes it back.
    unsafe { (*file).private_data = private };

    0
}

/// # Safety
///
/// `file` and `inode` must be the file and inode for a file that is being released. The file
/// must be associated with a `MiscDeviceRegistration<T>`.
unsafe extern "C" fn fops_release<T: MiscDevice>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> crate::ffi::c_int {
    // SAFETY: The release call of a file owns the private data.
    let private = unsafe { (*file).private_data };
    // SAFETY: Release owns the private data, which `fops_open` set from `into_foreign`.
    let ptr = unsafe { <T::Ptr as ForeignOwnable>::from_foreign(private) };

    T::release(ptr);

    0
}

/// Runs `handler` on the private data of `file`, and turns its result into the return value
/// of an ioctl.
///
/// # Safety
///
/// `file` must be a valid file that is associated with a `MiscDeviceRegistration<T>`.
unsafe fn ioctl_with<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: crate::ffi::c_uint,
    arg: crate::ffi::c_ulong,
    handler: fn(<T::Ptr as ForeignOwnable>::Borrowed<'_>, u32, usize) -> Result<isize>,
) -> crate::ffi::c_long {
    // SAFETY: The ioctl call of a file can access the private data.
    let private = unsafe { (*file).private_data };
    // SAFETY: Ioctl calls can borrow the private data of the file, which `fops_open` set.
    let device = unsafe { <T::Ptr as ForeignOwnable>::borrow(private) };

    match handler(device, cmd, arg) {
        Ok(ret) => ret as crate::ffi::c_long,
        Err(err) => err.to_errno() as crate::ffi::c_long,
    }
}

/// # Safety
///
/// `file` must be a valid file that is associated with a `MiscDeviceRegistration<T>`.
unsafe extern "C" fn fops_ioctl<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: crate::ffi::c_uint,
    arg: crate::ffi::c_ulong,
) -> crate::ffi::c_long {
    // SAFETY: The caller passes a file of a `MiscDeviceRegistration<T>`.
    unsafe { ioctl_with::<T>(file, cmd, arg, T::ioctl) }
}

/// # Safety
///
/// `file` must be a valid file that is associated with a `MiscDeviceRegistration<T>`.
#[cfg(CONFIG_COMPAT)]
unsafe extern "C" fn fops_compat_ioctl<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: crate::ffi::c_uint,
    arg: crate::ffi::c_ulong,
) -> crate::ffi::c_long {
    // SAFETY: The caller passes a file of a `MiscDeviceRegistration<T>`.
    unsafe { ioctl_with::<T>(file, cmd, arg, T::compat_ioctl) }
}
