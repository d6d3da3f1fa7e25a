package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/kafka"
)

// cmdReplay re-runs past deletions after a backup restore: it reads the
// requests topic from a time up to its end as it was when the replay began,
// and issues a new request for each, referencing the original (replay_of),
// so the deletions run again against the restored data and are audited as
// replays.
func cmdReplay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("replay", stderr, true)
	brokers := fl.String("brokers", "", "Kafka brokers, comma-separated (default 127.0.0.1:9092)")
	since := fl.String("since", "", "replay requests made at or after this time (RFC 3339, or a duration ago such as 72h)")
	actor := fl.String("actor", "", "who runs the replay, recorded in the audit log (default: the OS user)")
	dryRun := fl.Bool("dry-run", false, "list what would be replayed and publish nothing")
	wait := fl.Bool("wait", false, "wait for every replayed request's outcome; exit 1 if any failed")
	timeout := fl.Duration("timeout", 30*time.Minute, "with --wait: give up after this long")
	asJSON := fl.Bool("json", false, "print one JSON result object per request")
	if err := fl.parse(args); err != nil {
		return err
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return err
	}
	c, err := newPipelineClient(*fl.configPath, *brokers, "", "", "erasure-replay")
	if err != nil {
		return err
	}
	if *fl.dataDir != "" {
		c.cfg.DataDir = *fl.dataDir
	}
	*actor = defaultActor(*actor)
	rule, q, kcfg, topics := c.rule, c.q, c.kafka, c.q.Topics
	keys, err := c.cfg.EventKeys(false)
	if err != nil {
		return fmt.Errorf("event keys: %w", err)
	}
	allowed, err := c.cfg.Producers(keys)
	if err != nil {
		return err
	}
	originals, skipped, err := readRequests(ctx, kcfg, topics.Requests(), from, rule, allowed)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d requests since %s to replay (%d replays, invalid and unverified events skipped)\n", len(originals), from.Format(time.RFC3339), skipped)
	var reqs []schemas.DeletionRequested
	for _, o := range originals {
		ev, err := q.Build(producers.Request{ContactIDs: o.ContactIDs, RequestedBy: *actor, Source: schemas.SourceReplay,
			ReasonCode: o.ReasonCode, Ticket: o.Ticket, ReplayOf: o.RequestID, Deadline: bulkDeadline(c.cfg.Deadline, len(originals))})
		if err != nil {
			return fmt.Errorf("replay of %s: %w; nothing was submitted", o.RequestID, err)
		}
		reqs = append(reqs, ev)
	}
	if *dryRun || len(reqs) == 0 {
		for _, r := range reqs {
			fmt.Fprintf(stdout, "would replay %s (%d contacts)\n", r.ReplayOf, len(r.ContactIDs))
		}
		return nil
	}
	var waitSince *time.Time
	if *wait {
		t := time.Now()
		waitSince = &t
	}
	outs, closeClients, err := c.publish(ctx, reqs, waitSince, stderr)
	defer closeClients()
	if err != nil {
		return err
	}
	if !*wait {
		enc := json.NewEncoder(stdout)
		for _, r := range reqs {
			if *asJSON {
				enc.Encode(map[string]any{"request_id": r.RequestID, "replay_of": r.ReplayOf, "status": "submitted"})
			} else {
				fmt.Fprintf(stdout, "%s submitted, replay of %s\n", r.RequestID, r.ReplayOf)
			}
		}
		return nil
	}
	return waitOutcomes(ctx, reqs, outs, *timeout, *asJSON, rule, nil, stdout, stderr)
}

// readRequests reads every valid original request from the time since up
// to the end of the topic as it stands now. A request the pipeline would
// not have admitted (unsigned, forged, or an upstream key speaking for the
// UI) is skipped: a replay signs what it re-issues, and must not lend that
// signature to a request that never ran.
func readRequests(ctx context.Context, kcfg kafka.Config, topic string, since time.Time, rule schemas.ContactIDRule, allowed consumers.Producers) ([]schemas.DeletionRequested, int, error) {
	var out []schemas.DeletionRequested
	skipped := 0
	err := kafka.ReadSince(ctx, kcfg, topic, since, func(value []byte, headers map[string]string) {
		msg := message.NewMessage("", value)
		for k, v := range headers {
			msg.Metadata.Set(k, v)
		}
		var req schemas.DeletionRequested
		if allowed.Admit(topic, msg, rule, &req) != nil || req.Source == schemas.SourceReplay {
			skipped++
			return
		}
		out = append(out, req)
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped, nil
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("--since is required: the time of the backup that was restored")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want RFC 3339 or a duration such as 72h", s)
}
