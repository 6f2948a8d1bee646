package statusevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// PutEventsAPI is the part of *eventbridge.Client the publisher uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var (
	_ PutEventsAPI = (*eventbridge.Client)(nil)
	_ Publisher    = (*EventBridge)(nil)
	_ Publisher    = (*LogPublisher)(nil)
)

// EventBridge publishes status changes to one event bus.
type EventBridge struct {
	client PutEventsAPI
	bus    string
	sleep  func(context.Context, time.Duration) error
}

// NewEventBridge publishes to bus ("default" or a bus name or ARN).
func NewEventBridge(client PutEventsAPI, bus string) *EventBridge {
	return &EventBridge{client: client, bus: bus, sleep: onboarding.Sleep}
}

// maxEntries is PutEvents' most entries per request.
const maxEntries = 10

// entryAttempts bounds the tries of entries PutEvents refused one by one
// (throttling, an internal failure) before the batch is handed back.
const entryAttempts = 3

// Publish sends changes in calls of up to ten entries, one call after the
// other, never two of one account in a call: EventBridge does not order
// the entries of one call, so an account's changes go in separate calls,
// in order.
func (p *EventBridge) Publish(ctx context.Context, changes []onboarding.StatusChange) (int, error) {
	done := 0
	for done < len(changes) {
		chunk := nextChunk(changes[done:])
		n, err := p.put(ctx, chunk)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// nextChunk is the longest run of changes from the first, at most ten, in
// which no account appears twice.
func nextChunk(changes []onboarding.StatusChange) []onboarding.StatusChange {
	seen := map[string]bool{}
	for i, c := range changes {
		if i == maxEntries || seen[c.AccountID] {
			return changes[:i]
		}
		seen[c.AccountID] = true
	}
	return changes
}

// put sends one call's entries and sends again only those refused, and
// returns how many from the first are published. Retrying the refused
// alone keeps each account's order: a call holds an account once, and
// the account's next change is in a later call.
func (p *EventBridge) put(ctx context.Context, chunk []onboarding.StatusChange) (int, error) {
	entries := make([]ebtypes.PutEventsRequestEntry, len(chunk))
	for i, c := range chunk {
		detail, err := json.Marshal(c)
		if err != nil {
			return 0, err
		}
		entries[i] = ebtypes.PutEventsRequestEntry{
			Source: aws.String(Source), DetailType: aws.String(DetailType), Detail: aws.String(string(detail)),
			EventBusName: aws.String(p.bus), Time: aws.Time(c.OccurredAt),
		}
	}
	pending := make([]int, len(entries)) // indexes into entries, in order
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; ; attempt++ {
		// The SDK retries a failed call; entries refused one by one within
		// a successful call are ours to retry.
		send := make([]ebtypes.PutEventsRequestEntry, len(pending))
		for i, at := range pending {
			send[i] = entries[at]
		}
		out, err := p.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: send})
		if err != nil {
			return pending[0], err
		}
		var refused []int
		code := ""
		for i, at := range pending {
			// Fewer answers than entries: the rest are unknown, so refused.
			if i >= len(out.Entries) || aws.ToString(out.Entries[i].ErrorCode) != "" {
				if code == "" {
					code = "missing"
					if i < len(out.Entries) {
						code = aws.ToString(out.Entries[i].ErrorCode)
					}
				}
				refused = append(refused, at)
			}
		}
		if len(refused) == 0 {
			return len(entries), nil
		}
		pending = refused
		if attempt == entryAttempts {
			return pending[0], fmt.Errorf("PutEvents refused an entry %d times: %s", entryAttempts, code)
		}
		if err := p.sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
			return pending[0], err
		}
	}
}

// LogPublisher prints each status event as one log line: what `make dev`
// does instead of EventBridge.
type LogPublisher struct {
	Log *slog.Logger
	Bus string
}

func (p *LogPublisher) Publish(ctx context.Context, changes []onboarding.StatusChange) (int, error) {
	if p.Log == nil {
		return 0, errors.New("statusevents: LogPublisher without a logger")
	}
	for _, c := range changes {
		p.Log.InfoContext(ctx, "status event", "source", Source, "detail-type", DetailType, "event_bus", p.Bus, "detail", c)
	}
	return len(changes), nil
}
