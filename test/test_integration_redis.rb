# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/redis_server"

# redis-rb against a redis-server of our own: many fibers blocked in BLPOP, each on its own
# connection, are served by pushes from another connection.
class TestIntegrationRedis < IntegrationTest
  WAITERS = 50

  def setup
    super
    require_library("redis", "ruby-redis")
    @server = server(RedisServer)
  end

  def blocked_clients(redis)
    redis.info("clients")["blocked_clients"].to_i
  end

  def test_blpop_in_many_fibers_served_by_pushes
    list = "um-test-#{Process.pid}-#{name}"
    received, ticks = with_scheduler do
      run_with_ticker do
        pusher = Redis.new(**@server.params)
        waiters = Thread::Queue.new
        Fiber.schedule do
          # everyone blocked first (a bounded poll), then one push per waiter
          deadline = monotonic + 10
          sleep 0.01 until blocked_clients(pusher) >= WAITERS || monotonic > deadline
          blocked = blocked_clients(pusher)
          WAITERS.times { |i| pusher.rpush(list, "item #{i}") }
        ensure
          waiters << blocked # only now is the pusher's connection free to close
        end
        received = in_fibers(WAITERS) do
          redis = Redis.new(**@server.params)
          begin
            redis.blpop(list, timeout: 10)&.last
          ensure
            redis.close
          end
        end
        blocked = waiters.pop
        pusher.close
        [received, blocked]
      end
    end
    received, blocked = received
    assert_equal WAITERS, blocked, "not every fiber was blocked in BLPOP at once"
    assert_equal WAITERS.times.map { |i| "item #{i}" }.sort, received.sort, "every waiter got one item"
    assert_operator ticks, :>=, 1, "the ticker fiber did not run meanwhile"
  end

  def test_pipelined_commands_and_pubsub
    got, = with_scheduler do
      run_with_ticker do
        redis = Redis.new(**@server.params)
        subscriber = Redis.new(**@server.params)
        messages = []
        subscribed = Thread::Queue.new
        listening = Fiber.schedule do
          subscriber.subscribe("um-channel") do |on|
            on.subscribe { subscribed << true }
            on.message do |_channel, message|
              messages << message
              subscriber.unsubscribe if messages.size == 3
            end
          end
        end
        subscribed.pop
        counts = redis.pipelined { |pipe| 3.times { |i| pipe.publish("um-channel", "m#{i}") } }
        sleep 0.001 while listening.alive?
        [redis, subscriber].each(&:close)
        { counts: counts, messages: messages }
      end
    end
    assert_equal [1, 1, 1], got[:counts]
    assert_equal %w[m0 m1 m2], got[:messages]
  end
end
