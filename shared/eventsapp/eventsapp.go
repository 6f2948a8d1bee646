// Package eventsapp wires functions/statusevents: the stream consumer
// publishing to EventBridge. It is apart from shared/app, which the API's
// functions import, so that they do not link EventBridge's client: its
// schemas' package init alone adds 0.6 ms to each of their cold starts
// (make bench). It builds on shared/storeapp, not shared/app, so that it
// links no Stripe client either.
package eventsapp

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/connectexpress/onboarding/shared/statusevents"
	"github.com/connectexpress/onboarding/shared/storeapp"
)

// Lambda builds the stream consumer for lambda.Start: it holds no Stripe
// secret and publishes to EVENT_BUS_NAME.
func Lambda() func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	a, err := storeapp.New(context.Background(), storeapp.Options{})
	if err != nil {
		storeapp.Fail(err)
	}
	pub, err := Publisher(a)
	if err != nil {
		storeapp.Fail(err)
	}
	return statusevents.NewConsumer(pub, a.Logger).Handle
}

// Publisher publishes status changes to EVENT_BUS_NAME through the SDK's
// client (AWS_ENDPOINT_URL_EVENTBRIDGE overrides its endpoint).
func Publisher(a *storeapp.Base) (*statusevents.EventBridge, error) {
	cfg, endpoint, err := a.AWS("EVENTBRIDGE")
	if err != nil {
		return nil, err
	}
	client := eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return statusevents.NewEventBridge(client, a.Config.Ops.EventBusName), nil
}
