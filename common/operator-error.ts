/**
 * A failure the operator fixes (a flag, a key, a file): the CLI shows its message as one line
 * and exits 2. Its message never carries a credential value.
 */
export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
