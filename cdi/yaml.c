/* CDI spec files in YAML, read with libyaml into the jansson tree the JSON ones give, so one validator serves both. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_DEPTH_MAX 64

static bool plain_int(const char *s, json_int_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0); /* 0755 and 0x1ff as YAML 1.1 reads them */
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static json_t *scalar(yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_string(s);
	json_int_t v;
	if (plain_int(s, &v))
		return json_integer(v);
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return json_null();
	return json_string(s);
}

static json_t *node_json(yaml_document_t *doc, yaml_node_t *n, int depth, struct qerr *err)
{
	if (depth > YAML_DEPTH_MAX) {
		qerr_set(err, "line %zu: nested too deeply", n->start_mark.line + 1);
		return NULL;
	}
	if (n->type == YAML_SCALAR_NODE) {
		json_t *j = scalar(n);
		if (!j)
			qerr_set(err, "line %zu: not valid UTF-8", n->start_mark.line + 1);
		return j;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		json_t *a = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			json_t *v = node_json(doc, yaml_document_get_node(doc, *i), depth + 1, err);
			if (!v || json_array_append_new(a, v) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	if (n->type != YAML_MAPPING_NODE) {
		qerr_set(err, "line %zu: empty node", n->start_mark.line + 1);
		return NULL;
	}
	json_t *o = json_object();
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (!k || k->type != YAML_SCALAR_NODE) {
			qerr_set(err, "line %zu: a mapping key is not a string", n->start_mark.line + 1);
			json_decref(o);
			return NULL;
		}
		const char *key = (const char *)k->data.scalar.value;
		if (json_object_get(o, key)) {
			qerr_set(err, "line %zu: duplicate key \"%s\"", k->start_mark.line + 1, key);
			json_decref(o);
			return NULL;
		}
		json_t *v = node_json(doc, yaml_document_get_node(doc, p->value), depth + 1, err);
		if (!v || json_object_set_new(o, key, v) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *cdi_yaml_load(const char *data, size_t len, struct qerr *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser)) {
		qerr_set(err, "YAML parser: out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		qerr_set(err, "line %zu: %s", parser.problem_mark.line + 1,
		         parser.problem ? parser.problem : "YAML syntax error");
		yaml_parser_delete(&parser);
		return NULL;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	json_t *j = root ? node_json(&doc, root, 0, err) : NULL;
	if (!root)
		qerr_set(err, "empty document");
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return j;
}
