// SPDX-License-Identifier: GPL-2.0
/* parse_test.cpp - sizes, policies, node lists, human units, error messages. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "numabuddy.h"

namespace {

uint64_t Size(const char *s)
{
	uint64_t v = 0xdead;
	EXPECT_EQ(0, nbl_parse_size(s, &v)) << s;
	return v;
}

TEST(ParseSize, PlainAndBinaryUnits)
{
	EXPECT_EQ(4096u, Size("4096"));
	EXPECT_EQ(4096u, Size("4K"));
	EXPECT_EQ(4096u, Size("4k"));
	EXPECT_EQ(2u << 20, Size("2M"));
	EXPECT_EQ(1u << 30, Size("1G"));
	EXPECT_EQ(64u << 20, Size("64MiB"));
	EXPECT_EQ(64u << 20, Size("64MB"));
	EXPECT_EQ(64u << 20, Size("64mib"));
	EXPECT_EQ(3ULL << 40, Size("3T"));
	EXPECT_EQ(512u, Size("512B"));
	EXPECT_EQ(0u, Size("0"));
}

TEST(ParseSize, RejectsJunk)
{
	uint64_t v = 7;
	for (const char *s : {"", "K", "-1", " 4K", "+4K", "4 K", "4KK", "4X", "1.5G", "4Kib2",
			      "0x10", "4KiBB"})
		EXPECT_EQ(-EINVAL, nbl_parse_size(s, &v)) << "'" << s << "'";
	EXPECT_EQ(-EINVAL, nbl_parse_size(nullptr, &v));
	EXPECT_EQ(7u, v) << "a failed parse must not write the result";
}

TEST(ParseSize, Overflow)
{
	uint64_t v;
	EXPECT_EQ(-ERANGE, nbl_parse_size("99999999999999999999", &v));
	EXPECT_EQ(-ERANGE, nbl_parse_size("16E", &v));
	EXPECT_EQ(-ERANGE, nbl_parse_size("16777216T", &v));
	EXPECT_EQ(0, nbl_parse_size("15E", &v));
	EXPECT_EQ(15ULL << 60, v);
}

TEST(ParsePolicy, NumactlSpellings)
{
	uint32_t p = 99;
	EXPECT_EQ(0, nbl_parse_policy("local", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_LOCAL), p);
	EXPECT_EQ(0, nbl_parse_policy("localalloc", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_LOCAL), p);
	EXPECT_EQ(0, nbl_parse_policy("default", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_LOCAL), p);
	EXPECT_EQ(0, nbl_parse_policy("preferred", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_PREFERRED), p);
	EXPECT_EQ(0, nbl_parse_policy("bind", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_BIND), p);
	EXPECT_EQ(0, nbl_parse_policy("membind", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_BIND), p);
	EXPECT_EQ(0, nbl_parse_policy("Interleave", &p));
	EXPECT_EQ(uint32_t(NB_POLICY_INTERLEAVE), p);
	EXPECT_EQ(-EINVAL, nbl_parse_policy("interleaved", &p));
	EXPECT_EQ(-EINVAL, nbl_parse_policy("", &p));
	EXPECT_EQ(-EINVAL, nbl_parse_policy(nullptr, &p));
}

TEST(ParsePolicy, NamesRoundTrip)
{
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t p = 99;
		ASSERT_EQ(0, nbl_parse_policy(nbl_policy_name(i), &p));
		EXPECT_EQ(i, p);
	}
	EXPECT_STREQ("unknown", nbl_policy_name(4));
}

TEST(ParseNodelist, Forms)
{
	uint64_t m = 0;
	EXPECT_EQ(0, nbl_parse_nodelist("0", &m));
	EXPECT_EQ(0x1u, m);
	EXPECT_EQ(0, nbl_parse_nodelist("0,1", &m));
	EXPECT_EQ(0x3u, m);
	EXPECT_EQ(0, nbl_parse_nodelist("0-3,6", &m));
	EXPECT_EQ(0x4fu, m);
	EXPECT_EQ(0, nbl_parse_nodelist("63", &m));
	EXPECT_EQ(1ULL << 63, m);
	EXPECT_EQ(0, nbl_parse_nodelist("2,2,1-2", &m));
	EXPECT_EQ(0x6u, m);
	EXPECT_EQ(0, nbl_parse_nodelist("all", &m));
	EXPECT_EQ(uint64_t(NBL_NODES_ALL), m);
}

TEST(ParseNodelist, RejectsJunk)
{
	uint64_t m = 5;
	for (const char *s : {"", ",", "0,", ",0", "3-1", "64", "0-64", "a", "1-", "-1", "0;1",
			      "1 ,2", "allx"})
		EXPECT_EQ(-EINVAL, nbl_parse_nodelist(s, &m)) << "'" << s << "'";
	EXPECT_EQ(5u, m);
}

std::string Fmt(uint64_t b)
{
	char buf[32];
	return nbl_format_bytes(b, buf, sizeof(buf));
}

TEST(FormatBytes, HumanUnits)
{
	EXPECT_EQ("0 B", Fmt(0));
	EXPECT_EQ("512 B", Fmt(512));
	EXPECT_EQ("1023 B", Fmt(1023));
	EXPECT_EQ("4 KiB", Fmt(4096));
	EXPECT_EQ("1.5 KiB", Fmt(1536));
	EXPECT_EQ("64 MiB", Fmt(64ULL << 20));
	EXPECT_EQ("1.5 GiB", Fmt(3ULL << 29));
	EXPECT_EQ("1 TiB", Fmt(1ULL << 40));
	EXPECT_EQ("16.0 EiB", Fmt(UINT64_MAX));
}

TEST(FormatBytes, Truncates)
{
	char buf[4];
	nbl_format_bytes(64ULL << 20, buf, sizeof(buf));
	EXPECT_STREQ("64 ", buf);
}

TEST(Strerror, ExplainsCommonCases)
{
	EXPECT_NE(nullptr, strstr(nbl_strerror(-ENOENT), "modprobe numabuddy"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-ENOENT), "not loaded"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-EACCES), "group 'numabuddy'"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-EACCES), "99-numabuddy.rules"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-EPROTO), "ABI"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-EPERM), "CAP_SYS_ADMIN"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-ENOTTY), "not a numabuddy device"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-ENOMEM), "numabuddy stats"));
	EXPECT_NE(nullptr, strstr(nbl_strerror(-EDQUOT), "quota"));
	/* Positive errno is accepted too; unknown ones fall back to strerror. */
	EXPECT_STREQ(nbl_strerror(-EACCES), nbl_strerror(EACCES));
	EXPECT_STREQ(strerror(EPIPE), nbl_strerror(-EPIPE));
	EXPECT_STREQ("success", nbl_strerror(0));
}

TEST(Nodes, LibnumaDiscovery)
{
	EXPECT_GE(nbl_node_count(), 1);
	EXPECT_GE(nbl_max_node(), 0);
	EXPECT_GE(nbl_current_node(), 0);
	EXPECT_LE(nbl_current_node(), nbl_max_node());
	EXPECT_EQ(-EINVAL, nbl_node_of_cpu(-1));
	EXPECT_GE(nbl_node_of_cpu(0), 0);
}

} // namespace
