"""The seed README's smallchain.yaml example, for tests of what users first try."""

# The README's example exactly as printed (re-indented), including `name: "gpt-4o` without its
# closing quote.
SEED_AS_PRINTED = """\
llms:
  - name: "gpt-4o
    provider: openai
    model: gpt-4o
    parameters:
      temperature: 0.0

agents:
  - name: "assistant"
    system_prompt: "your goal is to assist the human with their tasks"
    llm: "gpt-4o"
    tools:
      - agent: "calculator_operator"
  - name: calculator_operator
    system_prompt: "you are a skilled calculator operator"
    tools:
      - add
      # - subtract
      # - multiply
      # - divide

tools:
  - name: add
    builtin: add

  - name: subtract
    description: "subtract two numbers"
    parameters:
      type: object
      properties:
        a:
          type: number
          description: "The first number"
        b:
          type: number
          description: "The second number"
    executor:
      python: # or docker, local_nodejs, local_bash, etc.
        image: "python:3.12"
        command: |
          python -c "print(a - b)"
        requirements: []

tasks:
  - name: "do_some_math"
    user_message: "add (3 + 4) and (5 + 3) and add the results"
    agent: assistant

runs:
  - name: "my first run"
    task: do_some_math
"""
