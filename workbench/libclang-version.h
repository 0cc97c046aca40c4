/* SPDX-License-Identifier: GPL-2.0 */
/* setup.sh runs bindgen on this to learn which libclang it loads. */
#pragma message("clang version " __clang_version__)
