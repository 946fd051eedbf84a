/* --help text and man page sections, written from a config table (cfg.h). */
#include <stdio.h>
#include <string.h>

#include "common/cfg.h"

const char *
cfg_opt_arg(const struct cfg_opt *o)
{
	static const char *const args[] = {
		[CFG_STR] = "TEXT",
		[CFG_PATH] = "FILE",
		[CFG_UINT] = "N",
		[CFG_BOOL] = "yes|no",
		[CFG_ENUM] = "NAME",
		[CFG_ADDR] = "IPV4:PORT",
		[CFG_IP] = "IPV4",
		[CFG_ID] = "ID",
		[CFG_IDLIST] = "ID,...",
		[CFG_URL] = "https://HOST:PORT",
		[CFG_MAP] = "SAE_ID",
		[CFG_CUSTOM] = "VALUE",
	};

	if (o->arg)
		return o->arg;
	return (unsigned)o->type < sizeof(args) / sizeof(args[0]) &&
		args[o->type] ?
	    args[o->type] :
	    "VALUE";
}

/* "a|b|c" for named values, else the type's name. */
static void
put_arg(FILE *f, const struct cfg_opt *o)
{
	if (o->names == NULL || o->arg) {
		fputs(cfg_opt_arg(o), f);
		return;
	}
	for (size_t i = 0; o->names[i].name; i++)
		fprintf(f, "%s%s", i ? "|" : "", o->names[i].name);
}

/* What follows the help line: range, default. */
static void
facts(const struct cfg_opt *o, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	if (o->type == CFG_UINT)
		n = (size_t)snprintf(buf, cap, "%llu to %llu",
		    (unsigned long long)o->min, (unsigned long long)o->max);
	if (o->type == CFG_IDLIST || o->type == CFG_MAP)
		n = (size_t)snprintf(buf, cap, "at most %llu",
		    (unsigned long long)o->max);
	if (o->def && n < cap)
		snprintf(buf + n, cap - n, "%sdefault %s", n ? ", " : "",
		    o->def);
}

/* Each section once, in the order of the table. */
static bool
first_of_sect(const struct cfg_table *t, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(t->opts[j].sect, t->opts[i].sect) == 0 &&
		    cfg_opt_applies(t, &t->opts[j]))
			return false;
	return true;
}

/* "[sae *]" is written "[sae ARG]". */
static void
put_sect(FILE *f, const char *sect, const char *pre, const char *post)
{
	size_t n = strlen(sect);

	if (n > 2 && strcmp(sect + n - 2, " *") == 0)
		fprintf(f, "%s[%.*s NAME]%s", pre, (int)(n - 2), sect, post);
	else
		fprintf(f, "%s[%s]%s", pre, sect, post);
}

void
cfg_help(const struct cfg_table *t, FILE *f)
{
	char more[128];

	fprintf(f, "usage: %s\n\n%s\n\n", t->usage, t->about);
	fprintf(f,
	    "  --config FILE           read the settings from FILE (INI)\n"
	    "  --check-config FILE     check FILE and the flags, then exit "
	    "(0: valid)\n"
	    "  -h, --help              this text\n"
	    "  --help-man              these options as man page sections "
	    "(roff)\n\n"
	    "Settings: \"key = value\" lines under [section] in the file; the "
	    "flag after\na key sets the same and overrides the file.\n");
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *o = &t->opts[i];

		if (!cfg_opt_applies(t, o))
			continue;
		if (first_of_sect(t, i))
			put_sect(f, o->sect, "\n", "\n");
		fprintf(f, "  %s = ", strcmp(o->key, "*") ? o->key : "KEY");
		put_arg(f, o);
		if (o->flag) {
			fprintf(f, ", --%s ", o->flag);
			put_arg(f, o);
		}
		facts(o, more, sizeof(more));
		fprintf(f, "\n        %s", o->help);
		if (more[0] != '\0')
			fprintf(f,
			    strlen(o->help) + strlen(more) > 66 ?
				"\n        (%s)" :
				" (%s)",
			    more);
		fputc('\n', f);
	}
	if (t->tail)
		fprintf(f, "\n%s\n", t->tail);
}

/* roff text: backslash and hyphen escaped, no request at a line start. */
static void
roff(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else if (*s == '\n') {
			fputc('\n', f);
			if (s[1] == '.' || s[1] == '\'')
				fputs("\\&", f);
		} else
			fputc(*s, f);
	}
}

static void
roff_arg(FILE *f, const struct cfg_opt *o)
{
	char   buf[256];
	size_t n = 0;

	if (o->names == NULL || o->arg) {
		roff(f, cfg_opt_arg(o));
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; o->names[i].name && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s",
		    i ? "|" : "", o->names[i].name);
	roff(f, buf);
}

static void
man_options(const struct cfg_table *t, FILE *f)
{
	fputs(".SH OPTIONS\n"
	      ".TP\n\\fB\\-\\-config\\fR \\fIFILE\\fR\n"
	      "Read the settings from FILE (see CONFIGURATION).\n"
	      ".TP\n\\fB\\-\\-check\\-config\\fR \\fIFILE\\fR\n"
	      "Check FILE and the flags, print the first error (file, line, "
	      "value), and exit: 0 when valid.\n"
	      ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n"
	      "Print the options and settings.\n"
	      ".TP\n\\fB\\-\\-help\\-man\\fR\n"
	      "Print these sections of the manual page (roff).\n",
	    f);
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *o = &t->opts[i];

		if (o->flag == NULL || !cfg_opt_applies(t, o))
			continue;
		fputs(".TP\n\\fB\\-\\-", f);
		roff(f, o->flag);
		fputs("\\fR \\fI", f);
		roff(f, cfg_opt_arg(o));
		fputs("\\fR\n", f);
		roff(f, o->help);
		fputs(". Sets ", f);
		put_sect(f, o->sect, "", " ");
		roff(f, o->key);
		fputs(" over the file.\n", f);
	}
}

void
cfg_man(const struct cfg_table *t, FILE *f)
{
	char more[128];

	man_options(t, f);
	fputs(".SH CONFIGURATION\n"
	      "One INI file: \\fB[section]\\fR lines, then \\fIkey\\fR = "
	      "\\fIvalue\\fR lines; lines starting with ; or # are comments.\n"
	      "An error names the file, the line and the bad value.\n",
	    f);
	for (size_t i = 0; i < t->nopts; i++) {
		const struct cfg_opt *o = &t->opts[i];

		if (!cfg_opt_applies(t, o))
			continue;
		if (first_of_sect(t, i))
			put_sect(f, o->sect, ".SS ", "\n");
		fputs(".TP\n\\fB", f);
		roff(f, strcmp(o->key, "*") ? o->key : "KEY");
		fputs("\\fR = \\fI", f);
		roff_arg(f, o);
		fputs("\\fR\n", f);
		roff(f, o->help);
		facts(o, more, sizeof(more));
		if (more[0] != '\0') {
			fputs(" (", f);
			roff(f, more);
			fputs(")", f);
		}
		fputs(".", f);
		if (o->flag) {
			fputs(" Flag: \\fB\\-\\-", f);
			roff(f, o->flag);
			fputs("\\fR.", f);
		}
		fputc('\n', f);
	}
}
