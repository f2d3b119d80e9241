/* node/yaml.h - YAML for node/, through libfyaml, one way everywhere: quietly (libfyaml's
 * diagnostics are collected, never printed) with the first error as one line,
 * "malformed YAML: <what> (line L, column C)[: a hint]", L and C where the text is broken.
 *
 * Owns: whole documents (the --config file, the CLI's look at a manifest) and manifest text as
 * a jansson value with the lines of its values. Must not: know what any field means. */
#ifndef TRIB_YAML_H
#define TRIB_YAML_H

#include <jansson.h>
#include <libfyaml.h>
#include <stddef.h>
#include <stdio.h>

/* The document in text (len bytes). NULL with err set. Here and in yaml_to_json, text whose
 * '[' and '{' nest deeper than 64 is refused before libfyaml reads it ("malformed YAML: '['
 * nested deeper than 64 levels (line L, column C)"), and an error for a flow collection left
 * open names the bracket that opened it. */
struct fy_document *yaml_load(const char *text, size_t len, char *err, size_t errlen);

/* The 1-based line of scalar node n, 0 when unknown. */
int yaml_scalar_line(struct fy_node *n);

/* Where values of a converted document were written: a hash from value to line. Start it
 * zeroed; free it with yaml_lines_free. */
typedef struct {
    struct yaml_line_ent *v;
    size_t cap, n;   /* cap is a power of two, or 0 */
} yaml_lines_t;

/* The line of value v (a node of the converted document), 0 when not recorded. */
int yaml_line(const yaml_lines_t *lines, const json_t *v);
void yaml_lines_free(yaml_lines_t *lines);

/* Parses one YAML document into a JSON value (a new reference) typed by the YAML 1.2 core
 * schema (plain 12 -> integer, "12" -> string), aliases expanded (at most 4 Mi values and
 * scalar bytes in all), merge keys (<<), duplicate keys and more than one document refused.
 * The lines of values at most 4 levels deep go into lines, the root's into *root_line.
 * NULL with err naming the path, line and column ("owners: duplicate key 'x' (line 12, column 3)"), or
 * with err "" when the text holds no document (empty, only comments): the caller names what. */
json_t *yaml_to_json(const char *text, size_t len, yaml_lines_t *lines, int *root_line,
                     char *err, size_t errlen);

/* The line of the value at path ("owners.business", "schema[2].name": dotted keys, [k] indexes)
 * in doc, a document yaml_to_json converted with lines: when the value is not there (or too
 * deep for a line), the line of its nearest enclosing value that has one; 0 when none. */
int yaml_path_line(const json_t *doc, const yaml_lines_t *lines, const char *path);

#endif
