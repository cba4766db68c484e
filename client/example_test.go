package client_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	"gearmand/client"
)

// A worker that reverses its input, and a client calling it. (Not run as a
// test: it needs a server on 127.0.0.1:4730.)
func Example() {
	ctx := context.Background()
	const addr = "127.0.0.1:4730"

	w, err := client.NewWorker(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	w.Register("reverse", func(ctx context.Context, job *client.Job) ([]byte, error) {
		job.SendStatus(1, 1)
		out := slices.Clone(job.Data)
		slices.Reverse(out)
		return out, nil
	})
	go w.Work(ctx)

	c, err := client.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	out, err := c.Call(ctx, "reverse", "", []byte("hello"), client.Normal)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", out)
}

// Following a foreground job's progress update by update.
func ExampleTask_Next() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:4730")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	task, err := c.Submit(ctx, "resize", "", []byte("image bytes"), client.High)
	if err != nil {
		log.Fatal(err)
	}
	for {
		u, err := task.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if !u.Final() {
			fmt.Printf("%v %d/%d\n", u.Type, u.Numerator, u.Denominator)
			continue
		}
		res, err := task.Wait(ctx)
		fmt.Println(len(res.Data), err)
		return
	}
}
