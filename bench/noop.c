// SPDX-License-Identifier: Apache-2.0
/* The program the exec storm runs: does nothing, statically linked, so an exec costs the kernel's
 * exec path and little else (no dynamic loader, no libraries to map). */
int main(void)
{
	return 0;
}
