/* cardd — the card bureau service.
 *
 *   cardd [-c FILE] serve [--port-file F]   run the HTTP API and the workers
 *   cardd [-c FILE] migrate                 apply the database migrations
 *   cardd [-c FILE] config                  print every setting with its help
 */
#include "config.h"
#include "db.h"
#include "log.h"
#include "privileges.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(
        stderr,
        "usage: cardd [-c FILE] [-s KEY=VALUE]... serve [--port-file FILE] | migrate | config\n");
}

int main(int argc, char **argv)
{
    struct config cfg;
    const char *config_path = getenv("CARDD_CONFIG");
    int i = 1, rc = 1;

    if (config_defaults(&cfg) != 0)
        return 1;
    /* The config file is read first, then -s settings override it. */
    for (int j = 1; j + 1 < argc; j++)
        if (strcmp(argv[j], "-c") == 0)
            config_path = argv[j + 1];
    if (config_path && config_load(&cfg, config_path, stderr) != 0)
        goto out;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            i += 2;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq) {
                usage();
                goto out;
            }
            *eq = '\0';
            if (config_set(&cfg, argv[i + 1], eq + 1) != 0) {
                fprintf(stderr, "cardd: bad setting %s\n", argv[i + 1]);
                goto out;
            }
            i += 2;
        } else {
            usage();
            goto out;
        }
    }
    if (i >= argc) {
        usage();
        goto out;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "serve") == 0) {
        const char *port_file = NULL;
        if (i + 2 < argc && strcmp(argv[i + 1], "--port-file") == 0)
            port_file = argv[i + 2];
        rc = server_run(&cfg, port_file) == 0 ? 0 : 1;
    } else if (strcmp(cmd, "migrate") == 0) {
        /* As the owner of the schema: its own connection setting. */
        struct db *db = NULL;
        char msg[512] = "";
        const char *conninfo = cfg.migrate_database[0] ? cfg.migrate_database : cfg.database;
        if (db_connect(&db, conninfo, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "cardd: cannot connect: %s", msg);
            goto out;
        }
        rc = db_migrate(db, cfg.sql_dir, msg, sizeof(msg)) == 0 ? 0 : 1;
        fprintf(rc ? stderr : stdout, "%s%s\n", rc ? "cardd: migrate failed: " : "", msg);
        if (rc == 0 && cfg.service_role[0]) {
            rc = privileges_apply(db, cfg.sql_dir, cfg.service_role, msg, sizeof(msg)) == 0 ? 0 : 1;
            fprintf(rc ? stderr : stdout, "%s%s\n", rc ? "cardd: migrate failed: " : "", msg);
        }
        db_close(db);
    } else if (strcmp(cmd, "config") == 0) {
        config_describe(stdout);
        rc = 0;
    } else {
        usage();
    }
out:
    config_free(&cfg);
    return rc;
}
