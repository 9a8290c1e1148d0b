/* Compiled with -std=c99 -Wall -Wextra -Werror -pedantic: the header must stay clean C99. */
#include "quicklane.h"

int ql_header_c99_probe(void);
int ql_header_c99_probe(void) {
    ql_response r = QL_RESPONSE_INIT;
    ql_handler h = QL_HANDLER_INIT;
    ql_server_options o = QL_SERVER_OPTIONS_INIT;
    ql_server_stats s = QL_SERVER_STATS_INIT;
    return (int)(r.version + h.version + o.version + s.version);
}
