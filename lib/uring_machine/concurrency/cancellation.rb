# frozen_string_literal: true

# UringMachine.cancel_after and move_on_after: a deadline on a block.

module UringMachine
  # The deadline's signal inside the block: an Exception, not a StandardError, so that the
  # block's `rescue => e` lets it pass (Timeout does the same with its internal exception).
  # Each call makes its own, and only that call turns it into its outcome.
  class Deadline < Exception # rubocop:disable Lint/InheritException
  end
  private_constant :Deadline

  # Runs the block; if it has not finished after +seconds+, the op it waits on is cancelled, the
  # block is left (a `rescue => e` in it does not stop that) and +with_error+ is raised out of
  # cancel_after: an Exception class (instantiated), a String (the message of a RuntimeError)
  # or an Exception instance; UringMachine::Cancel by default. Nestable: the first deadline to
  # pass wins. Never fires once the block has returned.
  def self.cancel_after(seconds, with_error: Cancel, &block)
    raise ArgumentError, "cancel_after needs a block" unless block

    error = deadline_error(with_error, seconds)
    signal = Deadline.new("cancelled after #{seconds} s")
    begin
      current_machine.timeout(seconds, signal, &block)
    rescue Deadline => e
      raise unless e.equal?(signal)

      error.set_backtrace(e.backtrace) unless error.backtrace
      raise error, cause: nil
    end
  end

  # Runs the block; if it has not finished after +seconds+, the op it waits on is cancelled,
  # the block is left (a `rescue => e` in it does not stop that) and +with_value+ returned.
  # Nestable.
  def self.move_on_after(seconds, with_value: nil, &block)
    raise ArgumentError, "move_on_after needs a block" unless block

    signal = Deadline.new("moved on after #{seconds} s")
    begin
      current_machine.timeout(seconds, signal, &block)
    rescue Deadline => e
      raise unless e.equal?(signal)

      with_value
    end
  end

  # What cancel_after raises when the deadline passes, made before the block runs so that a bad
  # with_error is a TypeError at once.
  def self.deadline_error(with_error, seconds)
    case with_error
    when String then RuntimeError.new(with_error)
    when Exception then with_error
    when Class
      raise TypeError, "with_error must be an Exception class, instance or a String" unless with_error <= Exception

      with_error == Cancel ? Cancel.new("cancelled after #{seconds} s") : with_error.new("execution expired")
    else
      raise TypeError, "with_error must be an Exception class, instance or a String, not #{with_error.class}"
    end
  end
  private_class_method :deadline_error
end
