package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadSince calls fn with the value and headers of every record of topic
// written at or after since, up to the end of the topic as it stands when the call
// begins, so the read is bounded even while new records arrive. It uses no
// consumer group and commits nothing.
func ReadSince(ctx context.Context, cfg Config, topic string, since time.Time, fn func(value []byte, headers map[string]string)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(cfg.Opts()...)
	if err != nil {
		return classifyKafka(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err != nil {
		return fmt.Errorf("list offsets: %w", classifyKafka(err))
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list offsets: %w", classifyKafka(err))
	}
	if err := errors.Join(starts.Error(), ends.Error()); err != nil {
		return fmt.Errorf("list offsets of %s: %w", topic, classifyKafka(err))
	}
	from := map[int32]kgo.Offset{}
	want := map[int32]int64{} // partition -> end offset still to reach
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(o.Topic, o.Partition)
		if o.Offset >= 0 && o.Offset < end.Offset {
			from[o.Partition] = kgo.NewOffset().At(o.Offset)
			want[o.Partition] = end.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("read %s: %w", topic, classifyKafka(errs[0].Err))
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset == end-1 {
				delete(want, r.Partition)
			}
			headers := make(map[string]string, len(r.Headers))
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			fn(r.Value, headers)
		})
	}
	return nil
}
