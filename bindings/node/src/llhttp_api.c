/* Debian node-llhttp C source, compiled into the addon (hidden visibility). */
#include <api.c>
