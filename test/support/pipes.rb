# frozen_string_literal: true

# Pipes that close after use. Plain Ruby (no Minitest), for the tests and for the children they
# run (support/timed_calls.rb).
module Pipes
  # IO.pipe, closing both ends after the block; returns the block's value.
  def with_pipe
    r, w = IO.pipe
    yield r, w
  ensure
    r&.close
    w&.close
  end
end
