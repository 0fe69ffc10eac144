# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/postgres_server"

# require "uring_machine/active_record": ActiveRecord 6.1 on fibers, against a PostgreSQL
# server of our own. Each fiber gets its own pooled connection: 50 fibers, each in a
# transaction of its own that inserted a row, all at once, see only their own row until they
# commit.
class TestIntegrationActiveRecord < Minitest::Test
  include IntegrationTestHelper
  FIBERS = 50

  def setup
    super
    require_library("pg", "ruby-pg", note: "its extension is built for Debian's default Ruby only")
    require_library("active_record", "ruby-activerecord")
    require "uring_machine/active_record"
    @server = server(PostgresServer)
    params = @server.params
    ::ActiveRecord::Base.establish_connection(adapter: "postgresql", host: params[:host], port: params[:port],
                                              username: params[:user], database: params[:dbname], pool: FIBERS + 5)
    ::ActiveRecord::Base.connection.execute("DROP TABLE IF EXISTS um_items; CREATE TABLE um_items (id serial PRIMARY KEY, fiber integer)")
    ::ActiveRecord::Base.connection_pool.disconnect! # the fibers lease their own
    self.class.const_set(:Item, Class.new(::ActiveRecord::Base) { self.table_name = "um_items" }) unless self.class.const_defined?(:Item, false)
  end

  def teardown
    ::ActiveRecord::Base.connection_pool.disconnect! if defined?(::ActiveRecord::Base)
    super
  end

  def test_each_fiber_has_its_own_connection_and_transaction
    inserted = barrier(FIBERS)
    looked = barrier(FIBERS)
    seen = UringMachine.run do
      fibers = Array.new(FIBERS) do |i|
        UringMachine.spin do
          Item.transaction do
            Item.create!(fiber: i)
            inserted.call # every transaction has its row now, none committed
            rows = Item.pluck(:fiber)
            looked.call # nobody commits before everyone looked
            [rows, Item.connection.object_id]
          end
        end
      end
      fibers.map(&:join)
    end
    assert_equal (0...FIBERS).map { |i| [i] }, seen.map(&:first), "a fiber saw rows of transactions not yet committed"
    assert_equal FIBERS, seen.map(&:last).uniq.size, "fibers shared connections"
    assert_equal FIBERS, Item.count
  end

  # A callable that returns once +count+ fibers called it.
  def barrier(count)
    arrived = 0
    all_here = Thread::Queue.new
    lambda do
      arrived += 1
      count.times { all_here << true } if arrived == count
      all_here.pop
    end
  end
end
