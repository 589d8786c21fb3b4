/* sbx ps [-a] [--format table|json]: named and detached sandboxes. */
#include "sbx/cli.h"
#include "sbx/state.h"
#include "sbx/util.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

static gboolean all_opt;
static char *format_opt;

static GOptionEntry entries[] = {
    {"all", 'a', 0, G_OPTION_ARG_NONE, &all_opt, "Also the sandboxes that have exited", NULL},
    {"format", 0, 0, G_OPTION_ARG_STRING, &format_opt, "table (default) or json", "FORMAT"},
    {NULL}};

static char *status_of(const SbxState *s)
{
  if (s->running)
    return g_strdup("running");
  if (s->exited && s->timed_out)
    return g_strdup_printf("timed out (%d)", s->exit_code);
  if (s->exited)
    return g_strdup_printf("exited (%d)", s->exit_code);
  return g_strdup("exited (unknown)"); /* its supervisor died without a word */
}

static void add_json(JsonBuilder *b, const SbxState *s)
{
  g_autofree char *status = status_of(s);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "Name");
  json_builder_add_string_value(b, s->name);
  json_builder_set_member_name(b, "Id");
  json_builder_add_string_value(b, s->id ? s->id : "");
  json_builder_set_member_name(b, "Image");
  json_builder_add_string_value(b, s->image ? s->image : "");
  json_builder_set_member_name(b, "Pid");
  json_builder_add_int_value(b, s->running ? s->init_pid : 0);
  json_builder_set_member_name(b, "Status");
  json_builder_add_string_value(b, status);
  json_builder_set_member_name(b, "Running");
  json_builder_add_boolean_value(b, s->running);
  json_builder_set_member_name(b, "ExitCode");
  json_builder_add_int_value(b, s->exited ? s->exit_code : -1);
  json_builder_set_member_name(b, "TimedOut");
  json_builder_add_boolean_value(b, s->timed_out);
  json_builder_set_member_name(b, "Started");
  json_builder_add_string_value(b, s->started ? s->started : "");
  json_builder_set_member_name(b, "Ports");
  json_builder_add_string_value(b, s->ports ? s->ports : "");
  json_builder_set_member_name(b, "Networks");
  json_builder_add_string_value(b, s->networks ? s->networks : "");
  json_builder_end_object(b);
}

static int ps_parsed(int argc, char **argv, GError **err)
{
  gboolean json = g_strcmp0(format_opt, "json") == 0;
  if (format_opt && !json && strcmp(format_opt, "table") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "--format: '%s' is not table or json", format_opt), -1;
  g_auto(GStrv) names = sbx_state_names();
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  if (!json)
    printf("%-20s %-12s %-30s %-8s %-16s %-20s %-20s %s\n", "NAME", "ID", "IMAGE", "PID", "STATUS",
           "STARTED", "PORTS", "NETWORKS");
  for (char **n = names; *n; n++) {
    g_autoptr(SbxState) s = sbx_state_load(*n, NULL);
    if (!s) {
      g_autofree char *name = sbx_escape_text(*n);
      if (all_opt && !json)
        printf("%-20s %-12s %-30s %-8s %-16s\n", name, "-", "-", "-", "damaged");
      continue;
    }
    if (!all_opt && !s->running)
      continue;
    if (json) {
      add_json(b, s);
      continue;
    }
    g_autofree char *status = status_of(s);
    /* The state files are the user's, but a name or an image path may
     * still hold what a terminal would obey. */
    g_autofree char *base = g_path_get_basename(s->image ? s->image : "");
    g_autofree char *image = sbx_escape_text(base);
    g_autofree char *name = sbx_escape_text(s->name);
    g_autofree char *pid = s->running ? g_strdup_printf("%d", (int)s->init_pid) : g_strdup("-");
    g_autofree char *started = g_strndup(s->started ? s->started : "", 19);
    g_autofree char *networks = sbx_escape_text(s->networks && *s->networks ? s->networks : "-");
    printf("%-20s %-12s %-30s %-8s %-16s %-20s %-20s %s\n", name, s->id ? s->id : "", image, pid,
           status, started, s->ports && *s->ports ? s->ports : "-", networks);
  }
  json_builder_end_array(b);
  if (json) {
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *text = json_to_string(root, TRUE);
    g_autofree char *safe = sbx_escape_json_text(text);
    printf("%s\n", safe);
  }
  return 0;
}

static void clear_options(void)
{
  g_clear_pointer(&format_opt, g_free);
}

int sbx_cmd_ps(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "",        "List named and detached sandboxes (running ones; -a: all).",
      entries,   FALSE,
      ps_parsed, clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}
