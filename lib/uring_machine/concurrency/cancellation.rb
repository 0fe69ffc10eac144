# frozen_string_literal: true

# UringMachine.cancel_after and move_on_after: a deadline on a block.

module UringMachine
  # move_on_after's own signal: an Exception, so that the block's `rescue => e` lets it pass.
  class MoveOn < Exception # rubocop:disable Lint/InheritException
  end
  private_constant :MoveOn

  # Runs the block; if it has not finished after +seconds+, the op it waits on is cancelled and
  # +with_error+ is raised in it: an Exception class (instantiated), a String (the message of a
  # RuntimeError) or an Exception instance; UringMachine::Cancel by default. Nestable: the
  # first deadline to pass wins. Never fires once the block has returned.
  def self.cancel_after(seconds, with_error: Cancel, &block)
    raise ArgumentError, "cancel_after needs a block" unless block

    error = with_error.is_a?(String) ? RuntimeError.new(with_error) : with_error
    current_machine.timeout(seconds, error, &block)
  end

  # Runs the block; if it has not finished after +seconds+, the op it waits on is cancelled,
  # the block is left and +with_value+ returned. Nestable.
  def self.move_on_after(seconds, with_value: nil, &block)
    raise ArgumentError, "move_on_after needs a block" unless block

    signal = MoveOn.new("moved on after #{seconds} s")
    begin
      current_machine.timeout(seconds, signal, &block)
    rescue MoveOn => e
      raise unless e.equal?(signal)

      with_value
    end
  end
end
