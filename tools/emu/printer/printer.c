/*
 * printer.c - the emulated printer's own reading of the Evolis command
 * language: "ESC cmd;params CR", with Db carrying raw panel data whose
 * length follows from its bit-depth parameter.  Every command gets one
 * answer: "ACK"/"NACK;<code>" once the host took error management
 * (Pem;2), "OK" before that; read commands answer with text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

#define ESC 0x1b
#define CR  0x0d

static const char panel_letters[EMU_PANELS] = { 'y', 'm', 'c', 'k', 'o' };

size_t emu_panel_bytes(int panel)
{
    /* The guide's sizes for 5 bits (y, m, c) and 1 bit (k, o). */
    return panel < 3 ? 423120 : 84624;
}

static struct emu_reply *queue_reply(struct emu *emu, const char *text)
{
    struct emu_reply *r = g_new0(struct emu_reply, 1);

    snprintf(r->text, sizeof(r->text) - 1, "%s", text);
    r->len = strlen(r->text);
    r->text[r->len++] = CR;
    r->ready = true;
    g_queue_push_tail(&emu->replies, r);
    return r;
}

static void ack(struct emu *emu)
{
    queue_reply(emu, emu->host_errors ? "ACK" : "OK");
    snprintf(emu->last_result, sizeof(emu->last_result), "OK");
}

static void nack(struct emu *emu, char code)
{
    char text[16];

    snprintf(text, sizeof(text), "NACK;%c", code);
    queue_reply(emu, text);
    snprintf(emu->last_result, sizeof(emu->last_result), code == 'T' ? "ERR CARD" : "ERR");
}

static void drop_panels(struct emu *emu)
{
    for (int i = 0; i < EMU_PANELS; i++) {
        g_free(emu->panel[i]);
        emu->panel[i] = NULL;
    }
}

/* Hands the card in the printer to the station thread and forgets it. */
static struct emu_job *card_job(struct emu *emu, enum emu_job_kind kind, const char *reason)
{
    struct emu_job *job = g_new0(struct emu_job, 1);

    job->kind = kind;
    job->card_no = emu->card_no;
    snprintf(job->card_serial, sizeof(job->card_serial), "%s", emu->card_serial);
    snprintf(job->reason, sizeof(job->reason), "%s", reason ? reason : "");
    for (int i = 0; i < EMU_PANELS; i++) {
        job->panel[i] = emu->panel[i];
        emu->panel[i] = NULL;
    }
    return job;
}

/* Faults an action command meets, in the order a printer checks them. */
static char action_fault(struct emu *emu, bool needs_feeder, bool needs_ribbon, bool moves_card)
{
    if (emu->nack_once) {
        char c = emu->nack_once;

        emu->nack_once = 0;
        return c;
    }
    if (emu->faults & EMU_COVER_OPEN)
        return 'C';
    if (moves_card && ((emu->faults & EMU_JAM) || emu->card_jammed))
        return 'T';
    if (needs_ribbon && (emu->faults & EMU_RIBBON_OUT))
        return 'R';
    if (needs_feeder && !emu->card_inside && (emu->faults & EMU_FEEDER_EMPTY))
        return 'F';
    return 0;
}

static void cmd_insert(struct emu *emu)
{
    char code = action_fault(emu, true, false, true);
    struct emu_job *job;
    struct emu_reply *r;

    if (code == 'T' && !emu->card_inside) {
        /* The card left the feeder and stuck on the way. */
        emu->card_no++;
        emu->card_inside = true;
        emu->card_jammed = true;
    }
    if (code) {
        nack(emu, code);
        return;
    }
    emu->in_sequence = true;
    if (emu->card_inside) { /* already at the station */
        ack(emu);
        return;
    }
    emu->card_no++;
    emu->card_inside = true;
    snprintf(emu->card_serial, sizeof(emu->card_serial), "%lu", emu->next_serial++);
    job = card_job(emu, EMU_JOB_INSERT, NULL);
    ack(emu);
    /* The answer waits until the reader has the card. */
    r = g_queue_peek_tail(&emu->replies);
    r->ready = false;
    emu->cycle_started = g_get_monotonic_time();
    r->ready_at = emu->cycle_started + (gint64)emu->cycle_ms * 250;
    job->reply = r;
    emu_job_push(emu, job);
}

static void cmd_end(struct emu *emu, bool reject)
{
    char code =
        reject ? action_fault(emu, false, false, true) : action_fault(emu, false, true, true);
    struct emu_job *job;
    struct emu_reply *r;

    if (code) {
        nack(emu, code);
        return;
    }
    emu->in_sequence = false;
    if (!emu->card_inside) {
        if (reject) {
            ack(emu); /* nothing to reject: sequence closed */
            return;
        }
        queue_reply(emu, "NACK;1");
        snprintf(emu->last_result, sizeof(emu->last_result), "NO CARD");
        return;
    }
    job = card_job(emu, reject ? EMU_JOB_REJECT : EMU_JOB_EJECT, reject ? "host" : NULL);
    emu->card_inside = false;
    ack(emu);
    r = g_queue_peek_tail(&emu->replies);
    r->ready = false;
    /* A printed card leaves a full cycle after it was fed (the host's chip
	 * work happens inside the cycle); a rejected one a quarter cycle after
	 * the command. */
    if (reject)
        r->ready_at = g_get_monotonic_time() + (gint64)(emu->cycle_ms / 4) * 1000;
    else
        r->ready_at =
            MAX(g_get_monotonic_time() + 1000, emu->cycle_started + (gint64)emu->cycle_ms * 1000);
    job->reply = r;
    emu_job_push(emu, job);
}

static void cmd_reset(struct emu *emu)
{
    if (emu->faults & EMU_COVER_OPEN) {
        nack(emu, 'C');
        return;
    }
    emu->in_sequence = false;
    if (emu->card_inside) {
        /* A reset clears the path: the card goes to the reject box. */
        emu_job_push(emu, card_job(emu, EMU_JOB_REJECT, emu->card_jammed ? "jam" : "reset"));
        emu->card_inside = false;
    }
    emu->card_jammed = false;
    emu->faults &= ~(unsigned int)EMU_JAM;
    drop_panels(emu);
    ack(emu);
}

static void cmd_sensor(struct emu *emu, const char *which)
{
    const char *v = NULL;

    if (strcmp(which, "p") == 0)
        v = emu->card_jammed || (emu->faults & EMU_JAM) ? "JAM"
            : emu->card_inside                          ? "CARD"
                                                        : "NO CARD";
    else if (strcmp(which, "c") == 0)
        v = emu->faults & EMU_COVER_OPEN ? "OPEN" : "CLOSED";
    else if (strcmp(which, "r") == 0)
        v = emu->faults & EMU_RIBBON_OUT ? "OUT" : "OK";
    else if (strcmp(which, "f") == 0)
        v = emu->faults & EMU_FEEDER_EMPTY ? "EMPTY" : "CARD";
    if (v)
        queue_reply(emu, v);
    else
        nack(emu, '2');
}

/* A complete text command (without ESC and CR). */
static void run_command(struct emu *emu, char *line)
{
    char *argv[8] = { 0 };
    int argc = 0;

    for (char *save = NULL, *tok = strtok_r(line, ";", &save); tok && argc < 8;
         tok = strtok_r(NULL, ";", &save))
        argv[argc++] = tok;
    if (argc == 0) {
        nack(emu, '1');
        return;
    }
    emu_log(emu, "command %s%s%s", argv[0], argc > 1 ? ";" : "", argc > 1 ? argv[1] : "");
    if (emu->reply_once[0]) {
        /* A garbled or unexpected answer, on command: the command
		 * itself is not carried out. */
        queue_reply(emu, emu->reply_once);
        emu->reply_once[0] = '\0';
        return;
    }
    const char *c = argv[0];

    /* Reads answer even when the printer is in error. */
    if (strcmp(c, "Rfv") == 0) {
        queue_reply(emu, emu->firmware);
        return;
    }
    if (strcmp(c, "Rsn") == 0) {
        queue_reply(emu, emu->serial);
        return;
    }
    if (strcmp(c, "Rlr") == 0) {
        queue_reply(emu, emu->last_result);
        return;
    }
    if (strcmp(c, "Rse") == 0) {
        if (argc != 2)
            nack(emu, '2');
        else
            cmd_sensor(emu, argv[1]);
        return;
    }
    if (strcmp(c, "Pem") == 0) {
        if (argc != 2 || strlen(argv[1]) != 1 || !strchr("012", argv[1][0])) {
            nack(emu, '2');
            return;
        }
        emu->host_errors = argv[1][0] == '2';
        ack(emu);
        return;
    }
    if (strcmp(c, "Pr") == 0) {
        static const char *const ribbons[] = { "ymcko", "ymckok", "ymckos", "k", "ko", NULL };
        char code = action_fault(emu, false, true, false);
        bool ok = false;

        for (int i = 0; argc == 2 && ribbons[i]; i++)
            ok = ok || strcmp(argv[1], ribbons[i]) == 0;
        if (code)
            nack(emu, code);
        else if (!ok)
            nack(emu, '2');
        else
            ack(emu);
        return;
    }
    if (strcmp(c, "Pmi") == 0 || strcmp(c, "Sr") == 0 || strcmp(c, "Sv") == 0 ||
        strcmp(c, "Scs") == 0) {
        char code = strcmp(c, "Scs") == 0 ? 0 : action_fault(emu, false, false, false);

        if (code)
            nack(emu, code);
        else
            ack(emu);
        return;
    }
    if (strcmp(c, "Ss") == 0) {
        char code = action_fault(emu, false, false, false);

        if (code) {
            nack(emu, code);
            return;
        }
        emu->in_sequence = true;
        drop_panels(emu);
        ack(emu);
        return;
    }
    if (strcmp(c, "Sis") == 0 || strcmp(c, "Sic") == 0) {
        cmd_insert(emu);
        return;
    }
    if (strcmp(c, "Se") == 0) {
        cmd_end(emu, false);
        return;
    }
    if (strcmp(c, "Ser") == 0) {
        cmd_end(emu, true);
        return;
    }
    if (strcmp(c, "Srs") == 0) {
        cmd_reset(emu);
        return;
    }
    nack(emu, '1');
}

/* "Db;<panel>;<bits>;" seen: decide how many raw bytes follow. */
static bool start_download(struct emu *emu)
{
    char head[32];
    char p;
    int bits;
    int n;

    if (emu->line_len >= sizeof(head))
        return false;
    memcpy(head, emu->line, emu->line_len);
    head[emu->line_len] = '\0';
    if (sscanf(head, "Db;%c;%d;%n", &p, &bits, &n) != 2 || (size_t)n != emu->line_len)
        return false;
    const char *where = memchr(panel_letters, p, EMU_PANELS);
    emu->data_panel = where ? (int)(where - panel_letters) : -1;
    /* Only the depths this printer downloads; anything else is refused
	 * when the CR arrives, and its data is read as garbage commands. */
    if (emu->data_panel < 0 || (emu->data_panel < 3 && bits != 32) ||
        (emu->data_panel >= 3 && bits != 2))
        return false;
    emu->data_len = emu_panel_bytes(emu->data_panel);
    emu->data_got = 0;
    emu->data_buf = g_malloc(emu->data_len);
    emu->parse = PARSE_DATA;
    return true;
}

static void end_download(struct emu *emu, bool framed)
{
    char code = action_fault(emu, false, true, false);

    if (!framed) {
        g_free(emu->data_buf);
        nack(emu, '1');
    } else if (code) {
        g_free(emu->data_buf);
        nack(emu, code);
    } else {
        g_free(emu->panel[emu->data_panel]);
        emu->panel[emu->data_panel] = emu->data_buf;
        emu_log(emu, "panel %c: %zu bytes", panel_letters[emu->data_panel], emu->data_len);
        ack(emu);
    }
    emu->data_buf = NULL;
    emu->parse = PARSE_IDLE;
}

void emu_printer_feed(struct emu *emu, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t b = data[i];

        switch (emu->parse) {
        case PARSE_DATA: {
            size_t take = MIN(emu->data_len - emu->data_got, len - i);

            memcpy(emu->data_buf + emu->data_got, data + i, take);
            emu->data_got += take;
            i += take - 1;
            if (emu->data_got == emu->data_len)
                emu->parse = PARSE_DATA_END;
            break;
        }
        case PARSE_DATA_END:
            end_download(emu, b == CR);
            break;
        case PARSE_IDLE:
            /* ESC starts a command; the guide lets it be left
			 * out after a CR, so a letter starts one too. */
            emu->line_len = 0;
            if (b == ESC)
                emu->parse = PARSE_COMMAND;
            else if (g_ascii_isalpha(b)) {
                emu->line[emu->line_len++] = b;
                emu->parse = PARSE_COMMAND;
            }
            break;
        case PARSE_COMMAND:
            if (b == CR) {
                emu->line[emu->line_len] = '\0';
                emu->parse = PARSE_IDLE;
                if (!(emu->faults & EMU_HANG))
                    run_command(emu, (char *)emu->line);
                break;
            }
            if (emu->line_len + 1 >= sizeof(emu->line)) {
                /* Overlong: refuse it and resynchronise. */
                emu->parse = PARSE_IDLE;
                nack(emu, '1');
                break;
            }
            emu->line[emu->line_len++] = b;
            if (b == ';' && emu->line_len >= 3 && memcmp(emu->line, "Db;", 3) == 0 &&
                emu->line_len > 3 && !(emu->faults & EMU_HANG) && start_download(emu))
                break;
            break;
        }
    }
}

void emu_printer_host_changed(struct emu *emu)
{
    if (emu->parse == PARSE_DATA || emu->parse == PARSE_DATA_END) {
        g_free(emu->data_buf);
        emu->data_buf = NULL;
    }
    emu->parse = PARSE_IDLE;
    emu->line_len = 0;
    for (GList *l = emu->replies.head; l; l = l->next)
        ((struct emu_reply *)l->data)->stale = true;
}

void emu_printer_free(struct emu *emu)
{
    drop_panels(emu);
    g_free(emu->data_buf);
    emu->data_buf = NULL;
    struct emu_reply *r;
    while ((r = g_queue_pop_head(&emu->replies)))
        g_free(r);
}
