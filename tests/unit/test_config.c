/* test_config.c: precedence flag > env > file > default (DESIGN.md §2), the three syntaxes,
 * validation messages, and --help. */
#include "common/config.h"
#include "common/error.h"
#include "tests/unit/test.h"

static const struct config_option options[] = {
    {"listen", CONFIG_STRING, "0.0.0.0:3000", 0, 0, "address to listen on"},
    {"ping-interval", CONFIG_MS, "25000", 1, 3600000, "Engine.IO ping interval"},
    {"upstream-shards", CONFIG_INT, "1", 1, 1024, "upstream stream shards"},
    {"allow-eio3", CONFIG_BOOL, "no", 0, 0, "accept Engine.IO v3 clients"},
    {"jwt-secret", CONFIG_STRING, NULL, 0, 0, "HS256 secret"},
    {"help", CONFIG_FLAG, NULL, 0, 0, "print this help"},
    {"config", CONFIG_STRING, NULL, 0, 0, "config file"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static void test_defaults(void)
{
    struct config cfg;
    CHECK(config_init(&cfg, options, N_OPTIONS) == SIOC_OK);
    CHECK(strcmp(config_get(&cfg, "listen"), "0.0.0.0:3000") == 0);
    CHECK(config_get_int(&cfg, "ping-interval") == 25000);
    CHECK(!config_get_bool(&cfg, "allow-eio3"));
    CHECK(config_get(&cfg, "jwt-secret") == NULL);
    CHECK(config_source_of(&cfg, "listen") == CONFIG_FROM_DEFAULT);
    config_deinit(&cfg);
}

static void test_precedence(void)
{
    const char *file = "# sioc\nlisten 127.0.0.1:4000\nping-interval 1000  # short\n"
                       "upstream-shards 4\n\nallow-eio3 yes\njwt-secret a#b c\n";
    char *const envp[] = {"PATH=/bin", "SIOC_PING_INTERVAL=2000", "SIOC_UPSTREAM_SHARDS=8", NULL};
    char *const argv[] = {"sioc-gateway",         "--config", "f.conf",
                          "--upstream-shards=16", "--help",   NULL};
    struct config cfg;
    char err[200] = "";
    CHECK(config_init(&cfg, options, N_OPTIONS) == SIOC_OK);
    CHECK(config_load(&cfg, file, strlen(file), envp, 5, argv, err, sizeof err) == SIOC_OK);
    CHECK(strcmp(config_get(&cfg, "listen"), "127.0.0.1:4000") == 0);
    CHECK(config_source_of(&cfg, "listen") == CONFIG_FROM_FILE);
    CHECK(config_get_int(&cfg, "ping-interval") == 2000);
    CHECK(config_source_of(&cfg, "ping-interval") == CONFIG_FROM_ENV);
    CHECK(config_get_int(&cfg, "upstream-shards") == 16);
    CHECK(config_source_of(&cfg, "upstream-shards") == CONFIG_FROM_FLAG);
    CHECK(config_get_bool(&cfg, "allow-eio3"));
    CHECK(config_get_bool(&cfg, "help"));
    /* a '#' inside a value (not after whitespace) is data, not a comment */
    CHECK(strcmp(config_get(&cfg, "jwt-secret"), "a#b c") == 0);
    CHECK(strcmp(config_file_path(5, argv, envp), "f.conf") == 0);
    config_deinit(&cfg);
}

struct bad_case {
    const char *file;
    const char *env;
    const char *flag1;
    const char *flag2;
    const char *message;
};

static void test_rejections(void)
{
    static const struct bad_case cases[] = {
        {"pingg 3\n", NULL, NULL, NULL, "config line 1: unknown option 'pingg'"},
        {"\n\nping-interval soon\n", NULL, NULL, NULL, "config line 3: not a number: 'soon'"},
        {NULL, "SIOC_PING_INTERVAL=0", NULL, NULL, "SIOC_PING_INTERVAL: 0 is outside [1, 3600000]"},
        {NULL, "SIOC_ALLOW_EIO3=maybe", NULL, NULL,
         "SIOC_ALLOW_EIO3: expected yes or no, got 'maybe'"},
        {NULL, NULL, "--nope", NULL, "unknown option '--nope' (see --help)"},
        {NULL, NULL, "--listen", NULL, "--listen needs a value"},
        {NULL, NULL, "listen", NULL, "unexpected argument 'listen' (options are --key value)"},
        {NULL, NULL, "--upstream-shards", "99999999999999999999",
         "--upstream-shards: not a number: '99999999999999999999'"},
        {NULL, NULL, "--upstream-shards=-1", NULL, "--upstream-shards: -1 is outside [1, 1024]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;
        char err[200] = "";
        char *envp[] = {(char *)cases[i].env, NULL};
        char *argv[] = {"prog", (char *)cases[i].flag1, (char *)cases[i].flag2, NULL};
        int argc = cases[i].flag1 == NULL ? 1 : cases[i].flag2 == NULL ? 2 : 3;
        CHECK(config_init(&cfg, options, N_OPTIONS) == SIOC_OK);
        int rc = config_load(&cfg, cases[i].file, cases[i].file ? strlen(cases[i].file) : 0, envp,
                             argc, argv, err, sizeof err);
        CHECK(rc == SIOC_EINVAL);
        CHECK_STR(err, strlen(err), cases[i].message);
        config_deinit(&cfg);
    }
}

static void test_bad_table(void)
{
    static const struct config_option dup[] = {
        {"a", CONFIG_STRING, NULL, 0, 0, "x"},
        {"a", CONFIG_STRING, NULL, 0, 0, "y"},
    };
    static const struct config_option bad_default[] = {{"n", CONFIG_INT, "x", 0, 1, "x"}};
    struct config cfg;
    CHECK(config_init(&cfg, dup, 2) == SIOC_EINVAL);
    config_deinit(&cfg);
    CHECK(config_init(&cfg, bad_default, 1) == SIOC_EINVAL);
    config_deinit(&cfg);
}

static void test_help(void)
{
    struct config cfg;
    CHECK(config_init(&cfg, options, N_OPTIONS) == SIOC_OK);
    char out[2048];
    size_t need = config_help(&cfg, "sioc-gateway", out, sizeof out);
    CHECK(need == strlen(out));
    CHECK(strstr(out, "Usage: sioc-gateway") != NULL);
    CHECK(strstr(out, "  --ping-interval MS") != NULL);
    CHECK(strstr(out, "Engine.IO ping interval [25000]") != NULL);
    char tiny[16];
    CHECK(config_help(&cfg, "sioc-gateway", tiny, sizeof tiny) == need);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    config_deinit(&cfg);
}

static void test_lists(void)
{
    const char *cursor = " /, /chat ,,/a b,", *item;
    size_t len;
    const char *want[] = {"/", "/chat", "/a b"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(config_list_next(&cursor, &item, &len));
        CHECK(len == strlen(want[i]) && memcmp(item, want[i], len) == 0);
    }
    CHECK(!config_list_next(&cursor, &item, &len));
    CHECK(!config_list_next(&cursor, &item, &len)); /* stays at the end */
    cursor = "";
    CHECK(!config_list_next(&cursor, &item, &len));
    cursor = NULL;
    CHECK(!config_list_next(&cursor, &item, &len));
    CHECK(config_list_has("https://a.example, https://b.example", "https://b.example", 17));
    CHECK(config_list_has("/,/chat", "/", 1));
    CHECK(!config_list_has("/,/chat", "/cha", 4));
    CHECK(!config_list_has("/chat", "", 0));
    CHECK(!config_list_has(NULL, "/", 1));
}

int main(void)
{
    RUN(test_lists);
    RUN(test_defaults);
    RUN(test_precedence);
    RUN(test_rejections);
    RUN(test_bad_table);
    RUN(test_help);
    return test_summary("test_config");
}
