// SPDX-License-Identifier: GPL-2.0

#include <linux/string.h>

/*
 * s390 has its own strlen() and memchr(): static inline functions in
 * asm/string.h, or strlen() as a macro with KASAN, which bindgen does not
 * turn into bindings. Elsewhere the bindings have the functions themselves.
 */
#ifdef CONFIG_S390
size_t rust_helper_strlen(const char *s)
{
	return strlen(s);
}

#ifdef __HAVE_ARCH_MEMCHR
void *rust_helper_memchr(const void *s, int c, size_t n)
{
	return memchr(s, c, n);
}
#endif
#endif
