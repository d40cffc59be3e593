// Thin shim over the system zlib (Debian: zlib1g-dev): deflate and CRC-32 for PNG files.
#ifndef BROWSERCLOUD_CZLIB_SHIM_H
#define BROWSERCLOUD_CZLIB_SHIM_H
#include <zlib.h>
#endif
