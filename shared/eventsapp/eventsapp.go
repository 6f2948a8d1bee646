// Package eventsapp wires functions/statusevents: the stream consumer
// publishing to EventBridge. It is apart from shared/app, which every
// function imports, so that the API's functions do not link EventBridge's
// client: its schemas' package init alone adds 0.6 ms to each of their
// cold starts (make bench).
package eventsapp

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/statusevents"
)

// Lambda builds the stream consumer for lambda.Start: it holds no Stripe
// secret and publishes to EVENT_BUS_NAME.
func Lambda() func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	a, err := app.New(context.Background(), app.Options{})
	if err != nil {
		app.Fail(err)
	}
	pub, err := Publisher(a)
	if err != nil {
		app.Fail(err)
	}
	return statusevents.NewConsumer(pub, a.Logger).Handle
}

// Publisher publishes status changes to EVENT_BUS_NAME through the SDK's
// client (AWS_ENDPOINT_URL_EVENTBRIDGE overrides its endpoint).
func Publisher(a *app.App) (*statusevents.EventBridge, error) {
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
