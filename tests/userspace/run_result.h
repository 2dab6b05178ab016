// SPDX-License-Identifier: GPL-2.0
/* run_result.h - what the tests that run a program keep of it: exit code, stdout, stderr. */
#ifndef NB_RUN_RESULT_H
#define NB_RUN_RESULT_H

#include <fstream>
#include <sstream>
#include <string>

struct Result {
	int code;
	std::string out, err;
};

/* A whole file, "" when it cannot be read. */
inline std::string Slurp(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

#endif /* NB_RUN_RESULT_H */
