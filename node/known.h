/* node/known.h - the names a request may use, checked against the list its route takes: query
 * parameters (node/http.c, from the route table) and the keys of small JSON bodies (tokens, access
 * decisions, key rotation). A name not on the list is refused, never ignored: a misspelt filter or
 * field would else be dropped and its default used (?frm=100 read from seq 1; {"prodcut": ...}
 * issued a token for every product).
 *
 * Must not: decide anything about the values. */
#ifndef TRIB_KNOWN_H
#define TRIB_KNOWN_H

#include <jansson.h>

/* 1 when name is an entry of list ("a, b, c": names separated by a comma and spaces), else 0. */
int known_name(const char *list, const char *name);

/* The first key of obj that list does not name, or NULL when every key is known. */
const char *known_stray_key(json_t *obj, const char *list);

#endif
