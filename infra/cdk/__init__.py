"""The CDK app that deploys the engine to AWS: ``make synth`` writes its template, ``cdk deploy`` deploys it."""
