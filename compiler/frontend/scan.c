/* The pass over a model file's bytes and libyaml events before the document is loaded: the limits of
 * limits.h, NUL bytes and a second document, each reported at its place. */
#include "frontend/fe.h"
#include "frontend/limits.h"

#include <string.h>

/* Line and column (1-based, in characters as libyaml counts them) of byte offset `at`. */
static void place(const char *text, size_t at, int *line, int *col) {
  int l = 1, c = 1;
  for (size_t i = 0; i < at; i++) {
    if (text[i] == '\n') l++, c = 1;
    else if (((unsigned char)text[i] & 0xC0) != 0x80) c++; /* not a UTF-8 continuation byte */
  }
  *line = l;
  *col = c;
}

int snc_fe_prescan(const char *text, size_t len, const char *name, snc_error *err) {
  int line, col;
  if (len > SNC_YAML_MAX_BYTES) {
    place(text, SNC_YAML_MAX_BYTES, &line, &col);
    return snc_errorf(err, "%s:%d:%d: the file is larger than %d MiB, the limit of a model file", name, line, col,
                      SNC_YAML_MAX_BYTES >> 20);
  }
  const char *nul = memchr(text, 0, len);
  if (nul) {
    place(text, (size_t)(nul - text), &line, &col);
    return snc_errorf(err, "%s:%d:%d: contains a NUL byte; not a text file", name, line, col);
  }
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return snc_errorf(err, "%s: cannot initialise the YAML parser", name);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  int rc = 0, depth = 0, docs = 0;
  long nodes = 0;
  for (int done = 0; !done && !rc;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      yaml_mark_t m = parser.problem_mark;
      rc = snc_errorf(err, "%s:%d:%d: YAML syntax error: %s%s%s", name, (int)m.line + 1, (int)m.column + 1,
                      parser.problem ? parser.problem : "malformed document", parser.context ? " " : "",
                      parser.context ? parser.context : "");
      break;
    }
    int l = (int)ev.start_mark.line + 1, c = (int)ev.start_mark.column + 1;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT: done = 1; break;
    case YAML_DOCUMENT_START_EVENT:
      if (++docs > 1) rc = snc_errorf(err, "%s:%d:%d: a second YAML document starts here; a model file holds one", name, l, c);
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
      if ((ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) && ++depth > SNC_YAML_MAX_DEPTH)
        rc = snc_errorf(err, "%s:%d:%d: nesting deeper than %d levels", name, l, c, SNC_YAML_MAX_DEPTH);
      else if (++nodes > SNC_YAML_MAX_NODES)
        rc = snc_errorf(err, "%s:%d:%d: more than %d YAML nodes (values, lists, mappings)", name, l, c, SNC_YAML_MAX_NODES);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: depth--; break;
    default: break;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&parser);
  return rc;
}
