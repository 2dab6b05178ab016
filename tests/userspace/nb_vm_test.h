// SPDX-License-Identifier: GPL-2.0
/*
 * nb_vm_test.h - what the parts of nb_vm_test share: the verdict printers, the facts read at
 * open, small ioctl helpers, the independent placement check and SIGBUS probing
 * (nb_vm_test.cpp), and each part's tests (nb_vm_badinput.cpp, nb_vm_lifetime.cpp).
 */
#pragma once

#include <stdint.h>

#include "numabuddy.hpp"

namespace nbvm {

extern int g_failures;
extern const char *g_dev;
extern nb_version g_ver;
extern int g_nr_node_ids, g_pool_node, g_max_order;

void Pass(const char *name);
__attribute__((format(printf, 2, 3))) void Fail(const char *name, const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void Note(const char *fmt, ...);
/* One verdict from a condition; the reason is printed only on failure. */
#define CHECK(name, cond, ...) ((cond) ? Pass(name) : Fail(name, __VA_ARGS__))

int Ioctl(int fd, unsigned long cmd, void *arg);          /* 0 or -errno */
unsigned long WithSize(unsigned long cmd, unsigned size); /* another struct size encoded */
void ExpectErrno(const char *name, int got, int want);
uint64_t Bit(int n);
uint64_t Pattern(uint64_t nonce, uint64_t word); /* never zero */

/* Where a CONTIG block filled with Pattern() really is: kcore + sysfs, not the module. */
void VerifyPlacement(const char *name, nbl_handle *h, const nbl_block &b, int node);
void CrossCheckPagemap(const char *name, const nbl_block &b, int node);
void OnFault(int sig);                          /* SIGBUS/SIGSEGV handler for ProbeRead */
int ProbeRead(const volatile unsigned char *p); /* 0, or the signal the read raised */
uint64_t FdBytes(nbl_handle *h, int node);       /* this file's bytes on @node (STATS) */

/* nb_vm_badinput.cpp: bad input for every ioctl and for mmap. */
void TestBadAlloc(int fd, unsigned long cmd, const char *cmdname);
void TestBadPointers(int fd);
void TestBadCommands(int fd);
void TestBadFreeQueryStats(nbl_handle *h);
void TestBadBatch(nbl_handle *h);
void TestBadMmap(nbl_handle *h);

/* nb_vm_lifetime.cpp: two processes, permissions, quota, migration, reserve, std::pmr. */
void TestIsolation(int node);
void TestPermissions();
void TestQuota(nbl_handle *h, int node);
void TestMigrate(nbl_handle *h, int from, int to);
void TestReserve(nbl_handle *h, int node);
void TestPmr(int node);

} // namespace nbvm
