/*
 * The cheapest exec target there is: no libc, no dynamic loader, one page of
 * code. _start exits the whole process with status 0 straight away.
 * Built by harness/build.rs with -nostdlib -static.
 */

__attribute__((noreturn)) void _start(void)
{
#if defined(__x86_64__)
	__asm__ volatile("syscall" : : "a"(231 /* exit_group */), "D"(0) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = 94; /* exit_group */
	register long x0 __asm__("x0") = 0;
	__asm__ volatile("svc #0" : : "r"(x8), "r"(x0) : "memory");
#else
#error "tiny.c: add the exit_group syscall for this architecture"
#endif
	__builtin_unreachable();
}
